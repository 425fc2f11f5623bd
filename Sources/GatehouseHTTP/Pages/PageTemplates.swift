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
        <section aria-labelledby="access-heading">
        <h2 id="access-heading">Your access</h2>
        {{#membership}}<p>The policy puts you in <strong>{{membership}}</strong>: what you may reach follows from that.</p>{{/membership}}
        {{^membership}}<p>The policy names you in no group or role yet, so you can reach nothing through Gatehouse. An administrator adds you in the policy.</p>{{/membership}}
        {{#administrator}}<p>You administer this Gatehouse (invitations, offboarding, the policy), with a 15-minute idle timeout.</p>{{/administrator}}
        </section>
        <section aria-labelledby="passkeys-heading">
        <h2 id="passkeys-heading">Passkeys</h2>
        <ul class="list" id="passkeys">
        {{#passkeys}}
        <li><div class="item"><strong class="name">{{name}}</strong>
        <span class="meta">{{#model}}{{model}}, {{/model}}added {{created}}{{#lastUsed}}, last used {{lastUsed}}{{/lastUsed}}{{#backedUp}}, synced{{/backedUp}}</span>
        <details><summary>Rename</summary>
        <form class="rename" data-action="rename-passkey" data-id="{{id}}">
        <label for="name-{{id}}">New name</label>
        <input id="name-{{id}}" name="name" maxlength="64" required value="{{name}}" autocomplete="off">
        <button type="submit" class="secondary">Save</button>
        </form></details></div>
        {{#removable}}<button type="button" class="secondary" data-action="remove-passkey" data-id="{{id}}" aria-label="Remove passkey {{name}}">Remove</button>{{/removable}}</li>
        {{/passkeys}}
        </ul>
        {{#onlyOne}}<p class="meta">This is your only passkey: add another (a second device or a security key) before you can remove it.</p>{{/onlyOne}}
        <button type="button" id="add-passkey" data-action="add-passkey">Add a passkey</button>
        </section>
        <section aria-labelledby="sessions-heading">
        <h2 id="sessions-heading">Signed-in sessions</h2>
        <ul class="list" id="sessions">
        {{#sessions}}
        <li><div class="item"><span><strong>{{browser}}</strong>{{#current}} (this one){{/current}}</span>
        <span class="meta">{{#address}}from {{address}}, {{/address}}since {{created}}, last seen {{lastSeen}}</span></div>
        {{^current}}<button type="button" class="secondary" data-action="revoke-session" data-id="{{id}}" aria-label="End the session in {{browser}} since {{created}}">End</button>{{/current}}</li>
        {{/sessions}}
        </ul>
        </section>
        <section aria-labelledby="next-heading">
        <h2 id="next-heading">From a terminal</h2>
        <p>Install the <code>gatehouse</code> command, then sign in with this passkey:</p>
        <pre id="next-step"><code>gatehouse login --server {{publicURL}}</code></pre>
        <p class="meta">Then <code>gatehouse status</code> lists the servers you can reach and <code>gatehouse ssh HOST</code> connects with a short-lived certificate.</p>
        </section>
        <button type="button" id="signout" class="secondary" data-action="signout">Sign out</button>
        <p id="status" role="status" aria-live="polite"></p>
        """

    static let error = """
        <h1>{{heading}}</h1>
        <p class="error">{{message}}</p>
        <p><a href="/signin">Sign in</a></p>
        """

    static let denied = """
        <h1>{{heading}}</h1>
        <p class="error">{{message}}</p>
        <p><a href="{{account}}">Your account</a> shows the groups and roles the policy gives you.</p>
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
