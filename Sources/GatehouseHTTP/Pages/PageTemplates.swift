/// The sign-in pages' Mustache templates. Server-rendered, no external resources: one script
/// (``PageAssets/script``) does the `navigator.credentials` calls; everything else is HTML.
enum PageTemplates {
    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Gatehouse</title>
        <link rel="stylesheet" href="/assets/gatehouse.css">
        <script src="/assets/gatehouse.js" defer></script>
        </head>
        <body>
        <header><a class="brand" href="/account">Gatehouse</a></header>
        <main id="main">
        {{{body}}}
        </main>
        </body>
        </html>
        """

    static let enroll = """
        <h1>Create your passkey</h1>
        <p>Gatehouse has no passwords. Your passkey (your device's screen lock, or a security key) is how you sign in from now on.</p>
        <noscript><p class="error">This page needs JavaScript to talk to your passkey.</p></noscript>
        <button type="button" id="enroll" data-action="enroll">Create passkey</button>
        <p id="status" role="status" aria-live="polite"></p>
        """

    static let signIn = """
        <h1>Sign in</h1>
        <form id="signin-form" data-action="signin">
        <label for="username">User name <span class="hint">(optional with a passkey on this device)</span></label>
        <input id="username" name="username" autocomplete="username webauthn" autocapitalize="none" spellcheck="false" inputmode="email">
        <button type="submit" id="signin">Sign in with a passkey</button>
        </form>
        <p id="status" role="status" aria-live="polite"></p>
        """

    static let account = """
        <h1>{{username}}</h1>
        <p>Role: <strong>{{role}}</strong></p>
        <section aria-labelledby="passkeys-heading">
        <h2 id="passkeys-heading">Passkeys</h2>
        <ul class="list" id="passkeys">
        {{#passkeys}}
        <li><span>{{algorithm}} passkey, added {{created}}{{#lastUsed}}, last used {{lastUsed}}{{/lastUsed}}{{#backedUp}}, synced{{/backedUp}}</span>
        <button type="button" class="secondary" data-action="remove-passkey" data-id="{{id}}" aria-label="Remove passkey added {{created}}">Remove</button></li>
        {{/passkeys}}
        </ul>
        <button type="button" id="add-passkey" data-action="add-passkey">Add a passkey</button>
        </section>
        <section aria-labelledby="sessions-heading">
        <h2 id="sessions-heading">Signed-in sessions</h2>
        <ul class="list" id="sessions">
        {{#sessions}}
        <li><span>Since {{created}}, last seen {{lastSeen}}{{#current}} <strong>(this one)</strong>{{/current}}</span>
        {{^current}}<button type="button" class="secondary" data-action="revoke-session" data-id="{{id}}" aria-label="End session since {{created}}">End</button>{{/current}}</li>
        {{/sessions}}
        </ul>
        </section>
        <button type="button" id="signout" class="secondary" data-action="signout">Sign out</button>
        <p id="status" role="status" aria-live="polite"></p>
        """

    static let error = """
        <h1>{{heading}}</h1>
        <p class="error">{{message}}</p>
        <p><a href="/signin">Sign in</a></p>
        """

    static let notice = """
        <h1>{{heading}}</h1>
        <p>{{message}}</p>
        """

    static let consent = """
        <h1>Allow {{clientName}}?</h1>
        <p><strong>{{clientName}}</strong> (<code>{{clientID}}</code>) asks to:</p>
        <ul class="list">
        {{#scopes}}<li>{{.}}</li>{{/scopes}}
        </ul>
        <form method="post" action="/oauth2/consent">
        <input type="hidden" name="request" value="{{query}}">
        <button type="submit" name="decision" value="allow" id="allow">Allow</button>
        <button type="submit" name="decision" value="deny" id="deny" class="secondary">Deny</button>
        </form>
        """

    static let deviceEntry = """
        <h1>Connect a device</h1>
        <p>Type the code your device shows.</p>
        <form method="get" action="/device">
        <label for="user_code">Code</label>
        <input id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" spellcheck="false" value="{{userCode}}">
        <button type="submit" id="continue">Continue</button>
        </form>
        {{#problem}}<p class="error">{{problem}}</p>{{/problem}}
        """

    static let deviceConfirm = """
        <h1>Sign in {{clientName}} on your device?</h1>
        <p>Only continue if you started this yourself and your device shows <strong>{{userCode}}</strong>.</p>
        <p id="device-origin">This request started from <strong>{{startedFrom}}</strong> at {{startedAt}}; you are at {{yourAddress}}.
        If you did not just run a sign-in on a device of yours, someone may be trying to get your access: choose Deny.</p>
        <p>It will be able to:</p>
        <ul class="list">
        {{#scopes}}<li>{{.}}</li>{{/scopes}}
        </ul>
        <form method="post" action="/device">
        <input type="hidden" name="user_code" value="{{userCode}}">
        <button type="submit" name="decision" value="allow" id="allow">Allow</button>
        <button type="submit" name="decision" value="deny" id="deny" class="secondary">Deny</button>
        </form>
        """

    static let logoutConfirm = """
        <h1>Sign out?</h1>
        <p>An application asked to sign you out of Gatehouse.</p>
        <form method="post" action="/oauth2/logout">
        <input type="hidden" name="request" value="{{query}}">
        <button type="submit" name="confirm" value="yes" id="confirm-signout">Sign out</button>
        </form>
        """
}
