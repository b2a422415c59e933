/**
 * Server-rendered pages. Every dynamic value goes through `esc`. Pages carry no script except where a
 * nonce is passed (the demo IdP's auto-post form). Each page is one `main` landmark with a level-one
 * heading, in English (`lang`); the browser tests check every page with axe-core.
 */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"'`=]/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1d2433}
h1{font-size:1.4rem}.ref{color:#5b6478;font-size:.9rem;line-height:1.8}code{background:#f1f3f7;padding:.1rem .3rem;border-radius:3px}
a.button,button{display:inline-block;background:#2454d6;color:#fff;border:0;border-radius:4px;padding:.5rem 1rem;text-decoration:none;font-size:1rem;cursor:pointer}
label{display:block;margin:.6rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.4rem;font-size:1rem}`;

export function page(title: string, body: string, options: { head?: string } = {}): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · idp-bridge</title><style>${STYLE}</style>${options.head ?? ''}</head><body><main>${body}</main></body></html>`;
}

export function errorPage(input: { code: string; message: string; requestId: string; retryUrl?: string }): string {
  const retry = input.retryUrl ? `<p><a class="button" href="${esc(input.retryUrl)}">Try again</a></p>` : '';
  return page(
    'Sign-in problem',
    `<h1>We could not complete this request</h1><p>${esc(input.message)}</p>${retry}
<p class="ref">Error code: <code data-error-code>${esc(input.code)}</code><br>Support reference: <code data-request-id>${esc(input.requestId)}</code></p>
<p class="ref">If you contact your administrator, please give them the support reference.</p>`,
    { head: `<meta name="idpb-error-code" content="${esc(input.code)}">` },
  );
}

export function signedOutPage(): string {
  return page('Signed out', '<h1>You are signed out</h1><p>You can close this window.</p>');
}
