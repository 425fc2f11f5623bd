/// The pages' only script and stylesheet, served from memory under `/assets/`.
enum PageAssets {
    static let script = #"""
        "use strict";
        // Gatehouse sign-in pages: the only script, for navigator.credentials. No dependencies.
        const b64u = {
          encode(buffer) {
            let s = ""; for (const b of new Uint8Array(buffer)) s += String.fromCharCode(b);
            return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
          },
          decode(text) {
            const s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
            return Uint8Array.from(s, c => c.charCodeAt(0)).buffer;
          },
        };
        function say(text, isError) {
          const el = document.getElementById("status");
          if (el) { el.textContent = text; el.className = isError ? "error" : ""; }
        }
        async function post(path, body) {
          const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}), credentials: "same-origin" });
          let data = null; try { data = await r.json(); } catch (_) {}
          if (!r.ok) throw new Error((data && data.error && data.error.message) || ("request failed: " + r.status));
          return data;
        }
        function creationOptions(o) {
          return { ...o, challenge: b64u.decode(o.challenge), user: { ...o.user, id: b64u.decode(o.user.id) },
                   excludeCredentials: (o.excludeCredentials || []).map(c => ({ ...c, id: b64u.decode(c.id) })) };
        }
        function requestOptions(o) {
          return { ...o, challenge: b64u.decode(o.challenge), allowCredentials: (o.allowCredentials || []).map(c => ({ ...c, id: b64u.decode(c.id) })) };
        }
        function registrationJSON(c) {
          return { id: c.id, rawId: b64u.encode(c.rawId), type: c.type, authenticatorAttachment: c.authenticatorAttachment || undefined,
                   clientExtensionResults: c.getClientExtensionResults(),
                   response: { clientDataJSON: b64u.encode(c.response.clientDataJSON), attestationObject: b64u.encode(c.response.attestationObject),
                               transports: c.response.getTransports ? c.response.getTransports() : [] } };
        }
        function assertionJSON(c) {
          return { id: c.id, rawId: b64u.encode(c.rawId), type: c.type, clientExtensionResults: c.getClientExtensionResults(),
                   response: { clientDataJSON: b64u.encode(c.response.clientDataJSON), authenticatorData: b64u.encode(c.response.authenticatorData),
                               signature: b64u.encode(c.response.signature), userHandle: c.response.userHandle ? b64u.encode(c.response.userHandle) : undefined } };
        }
        async function register(optionsPath, verifyPath, body) {
          const started = await post(optionsPath, body);
          const credential = await navigator.credentials.create({ publicKey: creationOptions(started.publicKey) });
          return post(verifyPath, { ceremony: started.ceremony, credential: registrationJSON(credential) });
        }
        async function assert(optionsPath, verifyPath, body) {
          const started = await post(optionsPath, body);
          const credential = await navigator.credentials.get({ publicKey: requestOptions(started.publicKey) });
          return post(verifyPath, { ceremony: started.ceremony, credential: assertionJSON(credential) });
        }
        // Sensitive changes need a passkey check within five minutes: on "step-up" do it, then retry.
        async function withStepUp(action) {
          try { return await action(); } catch (e) {
            if (!/step-up/.test(e.message)) throw e;
            say("Confirm with a passkey you already have…");
            await assert("/api/webauthn/stepup/options", "/api/webauthn/stepup/verify");
            return action();
          }
        }
        // Where to go after signing in: a path on this server only (never another origin). The
        // same rule as the server's localPath: no control characters, spaces or backslashes
        // (browsers strip or reinterpret them: "/\t/evil.example" would become "//evil.example"),
        // no "//"; and the URL it resolves to must still be on this origin.
        function returnTo() {
          const to = new URLSearchParams(location.search).get("return_to") || "";
          if (to.length > 2048 || !/^\/(?![\/\\])[\x21-\x7e]*$/.test(to) || to.includes("\\")) return "/account";
          try {
            const url = new URL(to, location.origin);
            // A normalised path can begin with "//" ("/.//evil.example"), which location.assign
            // would read as another host: refused, like any other origin.
            return url.origin === location.origin && !url.pathname.startsWith("//") ? url.pathname + url.search + url.hash : "/account";
          } catch (e) { return "/account"; }
        }
        const actions = {
          async enroll() {
            const token = new URLSearchParams(location.hash.slice(1)).get("token");
            if (!token) throw new Error("This link has no enrollment token. Open the link exactly as you received it.");
            say("Waiting for your passkey…");
            await register("/api/webauthn/registration/options", "/api/webauthn/registration/verify", { token });
            history.replaceState(null, "", "/enroll");
            location.assign("/account");
          },
          async signin() {
            const username = (document.getElementById("username") || {}).value || "";
            say("Waiting for your passkey…");
            await assert("/api/webauthn/authentication/options", "/api/webauthn/authentication/verify", username ? { username } : {});
            location.assign(returnTo());
          },
          async "add-passkey"() {
            say("Waiting for your passkey…");
            await withStepUp(() => register("/api/passkeys/options", "/api/passkeys/verify"));
            location.reload();
          },
          async "remove-passkey"(el) {
            await withStepUp(() => post("/api/passkeys/remove", { id: el.dataset.id }));
            location.reload();
          },
          async "rename-passkey"(form) {
            await post("/api/passkeys/rename", { id: form.dataset.id, name: form.elements.name.value });
            location.reload();
          },
          async "revoke-session"(el) { await post("/api/sessions/revoke", { id: el.dataset.id }); location.reload(); },
          async signout() { await post("/api/session/signout"); location.assign("/signin"); },
        };
        // The browser's own WebAuthn errors, in words a person can act on.
        function explain(e) {
          if (e && (e.name === "NotAllowedError" || e.name === "AbortError")) {
            return "No passkey was used: the request was cancelled or timed out, or no passkey on this device belongs to this account "
              + "(or the account is not active). Try again, try another device, or ask an administrator for a recovery link.";
          }
          if (e && e.name === "InvalidStateError") return "This authenticator already holds a passkey for this account.";
          if (e && e.name === "SecurityError") return "Passkeys do not work at this address; open Gatehouse at its public address.";
          return (e && e.message) || String(e);
        }
        async function run(name, el) {
          try { await actions[name](el); } catch (e) { say(explain(e), true); }
        }
        document.addEventListener("click", e => {
          const el = e.target.closest("button[data-action]");
          if (el) { e.preventDefault(); run(el.dataset.action, el); }
        });
        document.addEventListener("submit", e => {
          const form = e.target.closest("form[data-action]");
          if (form) { e.preventDefault(); run(form.dataset.action, form); }
        });
        """#

    static let stylesheet = """
        :root { color-scheme: light dark; --accent: #2458c6; font-family: system-ui, sans-serif; line-height: 1.5; }
        body { margin: 0; }
        header { padding: 0.75rem 1rem; border-bottom: 1px solid #8884; }
        .brand { font-weight: 700; text-decoration: none; color: inherit; }
        main { max-width: 34rem; margin: 0 auto; padding: 1rem; }
        h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
        label { display: block; margin: 1rem 0 0.25rem; } .hint { color: #888; font-size: 0.9em; }
        input { width: 100%; box-sizing: border-box; font-size: 1rem; padding: 0.6rem; border: 1px solid #888; border-radius: 0.4rem; }
        button { font-size: 1rem; padding: 0.65rem 1.1rem; margin: 1rem 0; border-radius: 0.4rem; border: 1px solid var(--accent);
                 background: var(--accent); color: #fff; cursor: pointer; min-height: 44px; }
        button.secondary { background: transparent; color: inherit; border-color: #888; margin: 0; }
        button:focus-visible, input:focus-visible, a:focus-visible { outline: 3px solid #f0a000; outline-offset: 2px; }
        .list { list-style: none; padding: 0; } .list li { display: flex; justify-content: space-between; align-items: center; gap: 1rem;
                 padding: 0.6rem 0; border-bottom: 1px solid #8883; }
        .list .item { display: flex; flex-direction: column; min-width: 0; overflow-wrap: anywhere; }
        .meta { color: #777; font-size: 0.9em; }
        details summary { cursor: pointer; color: var(--accent); font-size: 0.9em; margin-top: 0.25rem; }
        form.rename { display: flex; gap: 0.5rem; align-items: flex-end; flex-wrap: wrap; } form.rename label { width: 100%; margin-top: 0.5rem; }
        form.rename input { flex: 1 1 10rem; width: auto; }
        pre { background: #8881; padding: 0.75rem; border-radius: 0.4rem; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
        code { font-family: ui-monospace, monospace; font-size: 0.95em; }
        .error { color: #c0392b; }
        """
}
