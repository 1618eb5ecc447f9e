// Settings > Webhooks: a small page over the webhooks REST API. Every
// piece of data comes from the API, called with the token the user signed
// in with (sessionStorage, sent as Authorization: Bearer, which Caddy's
// logs redact), so the page can do
// exactly what the API allows the token to do. Secrets are write-only:
// the API never returns them, and nothing here ever displays one.
// The DOM is built from elements and text nodes, never from HTML strings, under a CSP that
// allows no inline script.
'use strict';

(function () {
  const API = document.querySelector('meta[name="webhooks-api"]').content;
  const TOKEN_KEY = 'webhooks.token';
  const SIGNED_KEY = 'webhooks.signedIn';
  const LAST_KEY = 'webhooks.last';
  const CONFIG_HOOK_ID = 2 ** 52; // hooks declared in the Caddyfile: read-only
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // ---- small DOM helpers ------------------------------------------------

  // el('a', {href: '#', class: 'btn'}, 'text', child…)
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(node) { node.replaceChildren(); return node; }

  const labels = {};
  $$('#tpl-labels')[0].content.querySelectorAll('[data-field]').forEach((s) => { labels[s.dataset.field] = s.textContent; });

  // ---- time -------------------------------------------------------------

  const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  const UNITS = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];

  function relative(date) {
    const s = (date.getTime() - Date.now()) / 1000;
    if (Math.abs(s) >= 45 && Math.abs(s) < 3600) return rtf.format(Math.round(s / 60), 'minute');
    for (const [unit, n] of UNITS) {
      if (Math.abs(s) >= n || unit === 'second') return rtf.format(Math.round(s / n), unit);
    }
    return '';
  }

  function timeEl(iso) {
    const d = new Date(iso);
    return el('time', { datetime: iso, title: d.toLocaleString() }, relative(d));
  }

  // ---- the API ----------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  function errorText(data, status) {
    if (data && typeof data === 'object') {
      const m = data.message !== undefined ? data.message : data.error;
      if (typeof m === 'string') return m;
      if (m && typeof m === 'object') return m.error || JSON.stringify(m);
    }
    return 'HTTP ' + status;
  }

  // api calls the hooks API; it resolves to {data, headers} for a 2xx and
  // throws an APIError otherwise. A 401 signs the user out.
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    const init = { method, headers, cache: 'no-store', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(API + path, init);
    } catch (e) {
      throw new APIError(0, 'The API cannot be reached: ' + e.message);
    }
    let data = null;
    const text = await resp.text();
    if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
    if (!resp.ok) {
      const err = new APIError(resp.status, errorText(data, resp.status));
      if (resp.status === 401) {
        signOut('The API did not accept your token (401 Unauthorized). Sign in again.');
        err.handled = true;
      }
      throw err;
    }
    return { data, headers: resp.headers };
  }

  // ---- flash messages ---------------------------------------------------

  let pendingFlash = null;

  function flash(message, kind) {
    const f = $('#flash');
    clear(f);
    f.className = 'flash';
    if (!message) return;
    f.classList.add('alert', kind || 'info');
    f.setAttribute('role', kind === 'danger' ? 'alert' : 'status');
    f.append(el('span', {}, message), el('button', { type: 'button', class: 'close', 'aria-label': 'Dismiss', onclick: () => flash('') }, '×'));
  }

  // flashNext shows a message after the next navigation.
  function flashNext(message, kind) { pendingFlash = [message, kind]; }

  function fail(err) {
    if (err && err.handled) return;
    flash(err && err.message ? err.message : String(err), 'danger');
  }

  // ---- routing ----------------------------------------------------------

  // #/projects/<id>/hooks[/new | /<hook>[/events/<event>]][?page=n]
  const ROUTE = /^#\/(projects|groups)\/([^/?]+)\/hooks(?:\/(new|\d+)(?:\/events\/(\d+))?)?\/?(?:\?page=(\d+))?$/;

  function parseRoute() {
    const m = ROUTE.exec(location.hash);
    if (!m) return null;
    return { kind: m[1], id: m[2], hook: m[3] || null, event: m[4] || null, page: Number(m[5] || 1) };
  }

  function hooksHref(r) { return '#/' + r.kind + '/' + r.id + '/hooks'; }
  function hookHref(r, id) { return hooksHref(r) + '/' + id; }
  function apiBase(r) { return '/' + r.kind + '/' + r.id + '/hooks'; }
  function displayID(r) { try { return decodeURIComponent(r.id); } catch (e) { return r.id; } }
  function kindWord(r) { return r.kind === 'groups' ? 'group' : 'project'; }

  function show(view, title) {
    $('#loading').hidden = true;
    $$('main > section').forEach((s) => { s.hidden = s.id !== view; });
    document.title = title ? title + ' · Webhooks' : 'Webhooks';
  }

  function setWhere(r) {
    const w = clear($('#where'));
    $('#signout').hidden = !sessionStorage.getItem(SIGNED_KEY);
    if (!r) return;
    w.append(
      el('span', { class: 'muted' }, r.kind === 'groups' ? 'Group ' : 'Project '),
      el('a', { href: hooksHref(r) }, displayID(r)),
      ' ', el('a', { href: '#/', class: 'muted small' }, '(switch)'));
  }

  let renderSeq = 0;

  // Views of other scripts (integrations.js): {route(hash) → r|null,
  // render(r, seq)}, r with at least kind and id.
  const views = [];

  async function render() {
    const seq = ++renderSeq;
    const other = views.find((v) => v.route(location.hash));
    const r = other ? other.route(location.hash) : parseRoute();
    flash('');
    if (pendingFlash) { flash(...pendingFlash); pendingFlash = null; }
    if (!r || !sessionStorage.getItem(SIGNED_KEY)) {
      setWhere(null);
      return renderSignIn(r);
    }
    sessionStorage.setItem(LAST_KEY, hooksHref(r));
    setWhere(r);
    $$('.kind-word').forEach((s) => { s.textContent = kindWord(r); });
    const main = $('#main');
    main.setAttribute('aria-busy', 'true');
    try {
      if (other) await other.render(r, seq);
      else if (r.event) await renderEvent(r, seq);
      else if (r.hook === 'new') await renderForm(r, null, seq);
      else if (r.hook) await renderForm(r, r.hook, seq);
      else await renderHooks(r, seq);
    } catch (err) {
      if (seq !== renderSeq) return;
      $('#loading').hidden = true;
      fail(err);
    } finally {
      if (seq === renderSeq) main.removeAttribute('aria-busy');
    }
  }

  function current(seq) { return seq === renderSeq; }

  function focusHeading(view) {
    const h = $('#' + view + ' h1');
    if (h) { h.setAttribute('tabindex', '-1'); h.focus({ preventScroll: true }); }
  }

  // ---- sign in ----------------------------------------------------------

  function renderSignIn(r) {
    show('view-signin', 'Sign in');
    const f = $('#signin-form').elements;
    $('#signin-error').hidden = true;
    const signed = !!sessionStorage.getItem(SIGNED_KEY);
    f.token.value = '';
    f.token.placeholder = signed ? 'Signed in: leave blank to keep your token' : '';
    if (r) {
      f.kind.value = r.kind;
      f.path.value = displayID(r);
    }
    (signed ? f.path : f.token).focus();
  }

  $('#signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    const errBox = $('#signin-error');
    errBox.hidden = true;
    const path = f.path.value.trim().replace(/^\/+|\/+$/g, '');
    if (!path) {
      errBox.textContent = 'Enter the full path or ID of a project or group.';
      errBox.hidden = false;
      f.path.focus();
      return;
    }
    const previous = sessionStorage.getItem(TOKEN_KEY);
    const typed = f.token.value.trim();
    if (typed || !sessionStorage.getItem(SIGNED_KEY)) sessionStorage.setItem(TOKEN_KEY, typed);
    const r = { kind: f.kind.value, id: encodeURIComponent(path), page: 1 };
    try {
      await probe(r);
    } catch (err) {
      if (previous !== null && !typed) sessionStorage.setItem(TOKEN_KEY, previous);
      else if (!sessionStorage.getItem(SIGNED_KEY)) sessionStorage.removeItem(TOKEN_KEY);
      const words = { 401: 'The API did not accept this token.', 403: 'This token may not manage the webhooks of ' + path + '.', 404: 'No ' + (r.kind === 'groups' ? 'group' : 'project') + ' ' + path + '.' };
      errBox.textContent = (words[err.status] || err.message) + ' (' + (err.status ? 'HTTP ' + err.status : 'no answer') + ')';
      errBox.hidden = false;
      return;
    }
    sessionStorage.setItem(SIGNED_KEY, '1');
    location.hash = hooksHref(r);
  });

  // probe checks a token against a project or group without the 401
  // handling of api().
  async function probe(r) {
    const headers = { Accept: 'application/json' };
    if (token()) headers.Authorization = 'Bearer ' + token();
    const resp = await fetch(API + apiBase(r) + '?per_page=1', { headers, cache: 'no-store', redirect: 'error' });
    if (!resp.ok) {
      let data = null;
      try { data = await resp.json(); } catch (e) { /* not JSON */ }
      throw new APIError(resp.status, errorText(data, resp.status));
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(SIGNED_KEY);
    if (message) flashNext(message, 'danger');
    if (location.hash === '#/' || location.hash === '') render();
    else location.hash = '#/';
  }

  $('#signout').addEventListener('click', () => signOut('You are signed out.'));

  // ---- badges and banners -----------------------------------------------

  function failingBadge(hook) {
    if (hook.alert_status === 'disabled') {
      return el('span', { class: 'badge danger', title: 'Disabled until it is re-enabled: test it to re-enable it' }, 'Failed to connect');
    }
    if (hook.alert_status === 'temporarily_disabled') {
      const until = hook.disabled_until ? new Date(hook.disabled_until) : null;
      return el('span', { class: 'badge warning', title: until ? 'Disabled until ' + until.toLocaleString() : 'Temporarily disabled' }, 'Fails to connect');
    }
    return null;
  }

  // banner is GitLab's alert at the top of a failing hook's edit page.
  function banner(hook, withLink, r) {
    const recent = withLink
      ? el('a', { href: hookHref(r, hook.id) }, 'Recent events')
      : el('strong', {}, 'Recent events');
    if (hook.alert_status === 'disabled') {
      return el('div', { class: 'alert danger banner', role: 'alert' },
        el('strong', { class: 'alert-title' }, 'Webhook failed to connect'),
        withLink ? el('code', { class: 'break' }, hook.url) : null,
        el('p', {}, 'The webhook failed to connect, and is disabled. To re-enable it, check ', recent,
          ' for error details, then test your settings.'));
    }
    if (hook.alert_status === 'temporarily_disabled') {
      const until = hook.disabled_until ? new Date(hook.disabled_until) : null;
      return el('div', { class: 'alert warning banner', role: 'alert' },
        el('strong', { class: 'alert-title' }, 'Webhook fails to connect'),
        withLink ? el('code', { class: 'break' }, hook.url) : null,
        el('p', {}, 'The webhook failed to connect, and is disabled',
          until ? [' until ', el('time', { datetime: hook.disabled_until, title: until.toLocaleString() }, until.toLocaleTimeString()), ' (', relative(until), ')'] : '',
          '. It is re-enabled automatically then; its deliveries wait for it. To re-enable it now, check ', recent,
          ' for error details, then test your settings.'));
    }
    return null;
  }

  // blockedNote says which event holds an ordered hook's deliveries back.
  function blockedNote(hook) {
    const q = hook.ordered_queue;
    if (!q || !q.blocked_by) return null;
    const b = q.blocked_by;
    const next = b.next_attempt_at ? new Date(b.next_attempt_at) : null;
    return el('div', { class: 'alert warning small blocked', role: 'status' },
      el('strong', {}, 'Deliveries blocked'), ' by event ', el('code', { class: 'break' }, b.event_id),
      ' since ', timeEl(b.since), ': ', String(b.attempts), b.attempts === 1 ? ' failed attempt' : ' failed attempts',
      b.last_status ? ', last ' + b.last_status : '',
      next ? [', next ', el('time', { datetime: b.next_attempt_at, title: next.toLocaleString() }, relative(next))] : '',
      '. ', String(q.pending), q.pending === 1 ? ' delivery waits.' : ' deliveries wait, in order.');
  }

  function readOnly(hook) { return hook.id >= CONFIG_HOOK_ID; }

  // ---- the Test dropdown ------------------------------------------------

  function testMenu(r, hook) {
    const frag = $('#tpl-test').content.cloneNode(true);
    const menu = frag.querySelector('details');
    if (r.kind !== 'groups') menu.querySelectorAll('[data-group-only]').forEach((li) => li.remove());
    menu.querySelector('summary').setAttribute('aria-label', 'Test webhook ' + hook.url);
    menu.querySelectorAll('[data-test]').forEach((b) => {
      b.addEventListener('click', () => runTest(r, hook, b.dataset.test, menu));
    });
    return menu;
  }

  async function runTest(r, hook, field, menu) {
    menu.open = false;
    const summary = menu.querySelector('summary');
    summary.setAttribute('aria-busy', 'true');
    summary.classList.add('busy');
    try {
      await api('POST', apiBase(r) + '/' + hook.id + '/test/' + field);
      flashNext('Hook executed successfully (' + (labels[field] || field) + ').', 'success');
    } catch (err) {
      if (err.handled) return;
      if (err.status === 422) flashNext('Hook execution failed: ' + err.message, 'danger');
      else flashNext(err.message, 'danger');
    } finally {
      summary.removeAttribute('aria-busy');
      summary.classList.remove('busy');
    }
    await render();
    const again = $((parseRoute() || {}).hook ? '#form-test-slot summary' : '#hook-' + hook.id + ' summary');
    if (again) again.focus();
  }

  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    const open = $('details.menu[open]');
    if (open) { open.open = false; open.querySelector('summary').focus(); }
  });
  document.addEventListener('click', (ev) => {
    $$('details.menu[open]').forEach((d) => { if (!d.contains(ev.target)) d.open = false; });
  });

  // ---- the hooks list ---------------------------------------------------

  async function renderHooks(r, seq) {
    const { data: hooks, headers } = await api('GET', apiBase(r) + '?per_page=100&page=' + r.page);
    if (!current(seq)) return;
    $('#hooks-add').href = hooksHref(r) + '/new';
    const list = clear($('#hook-list'));
    const banners = clear($('#hooks-banners'));
    $('#hooks-empty').hidden = hooks.length > 0;
    for (const hook of hooks) {
      const b = banner(hook, true, r);
      if (b) banners.append(b);
      list.append(hookItem(r, hook));
    }
    pager($('#hooks-pages'), headers, (p) => hooksHref(r) + '?page=' + p);
    show('view-hooks', 'Webhooks of ' + displayID(r));
  }

  function triggerNames(hook) {
    return Object.keys(labels).filter((f) => hook[f] === true).map((f) => labels[f]);
  }

  function hookItem(r, hook) {
    const ro = readOnly(hook);
    const actions = el('div', { class: 'actions' },
      testMenu(r, hook),
      el('a', { class: 'btn', href: hookHref(r, hook.id), 'aria-label': (ro ? 'View' : 'Edit') + ' webhook ' + hook.url }, ro ? 'View' : 'Edit'),
      ro ? null : el('button', { type: 'button', class: 'btn danger', 'aria-label': 'Delete webhook ' + hook.url, onclick: () => confirmDelete(r, hook) }, 'Delete'));
    const triggers = triggerNames(hook);
    return el('li', { class: 'hook card', id: 'hook-' + hook.id },
      el('div', { class: 'hook-head' },
        el('code', { class: 'hook-url break' }, hook.url),
        failingBadge(hook),
        ro ? el('span', { class: 'badge', title: 'Declared in the Caddy configuration: read-only here' }, 'Configured') : null,
        hook.ordered ? el('span', { class: 'badge neutral', title: 'Delivered one at a time, in the order the events happened' }, 'Ordered') : null),
      blockedNote(hook),
      hook.name ? el('div', { class: 'hook-name' }, hook.name) : null,
      hook.description ? el('div', { class: 'muted' }, hook.description) : null,
      el('div', { class: 'hook-triggers' },
        triggers.length ? triggers.map((t) => el('span', { class: 'badge neutral' }, t)) : el('span', { class: 'muted' }, 'No triggers')),
      el('div', { class: 'muted small' }, 'SSL Verification: ' + (hook.enable_ssl_verification ? 'enabled' : 'disabled')),
      actions);
  }

  function pager(nav, headers, href) {
    clear(nav);
    const prev = headers.get('X-Prev-Page');
    const next = headers.get('X-Next-Page');
    const page = headers.get('X-Page');
    const total = headers.get('X-Total-Pages');
    if (!prev && !next) return;
    if (prev) nav.append(el('a', { class: 'btn', href: href(prev), rel: 'prev' }, '‹ Previous'));
    nav.append(el('span', { class: 'muted' }, 'Page ' + page + (total ? ' of ' + total : '')));
    if (next) nav.append(el('a', { class: 'btn', href: href(next), rel: 'next' }, 'Next ›'));
  }

  function confirmDelete(r, hook) {
    const dlg = $('#confirm-delete');
    $('#confirm-url').textContent = hook.url;
    const opener = document.activeElement;
    dlg.returnValue = '';
    dlg.addEventListener('close', async function onClose() {
      dlg.removeEventListener('close', onClose);
      if (dlg.returnValue !== 'delete') { if (opener) opener.focus(); return; }
      try {
        await api('DELETE', apiBase(r) + '/' + hook.id);
        flashNext('Webhook was deleted.', 'success');
        if (location.hash === hooksHref(r)) render();
        else location.hash = hooksHref(r);
      } catch (err) { fail(err); }
    });
    dlg.showModal();
  }

  // ---- add and edit -----------------------------------------------------

  const form = $('#hook-form');
  const F = form.elements; // F.name is the Name field, never the form's own name
  let editing = null; // the hook being edited (as the API returned it), or null
  let removedHeaders = [];

  function maskRow(existingKey) {
    const n = maskRow.n = (maskRow.n || 0) + 1;
    const row = el('div', { class: 'row mask-row', dataset: existingKey ? { existing: existingKey } : {} },
      el('div', { class: 'field' },
        el('label', { for: 'mask-value-' + n }, 'Sensitive portion of URL'),
        el('input', { id: 'mask-value-' + n, class: 'mask-value', type: 'password', autocomplete: 'off', spellcheck: 'false',
          placeholder: existingKey ? 'Unchanged: enter a new value to replace it' : 'secret part of the URL' })),
      el('div', { class: 'field' },
        el('label', { for: 'mask-key-' + n }, 'How it looks in the UI'),
        el('input', { id: 'mask-key-' + n, class: 'mask-key', spellcheck: 'false', autocapitalize: 'off', pattern: '[a-z0-9_]+', placeholder: 'name', value: existingKey || undefined, readonly: !!existingKey })),
      existingKey ? null : el('button', { type: 'button', class: 'btn remove', 'aria-label': 'Remove this masked portion', onclick: () => { row.remove(); updatePreview(); } }, 'Remove'));
    row.addEventListener('input', updatePreview);
    return row;
  }

  function headerRow(existingKey) {
    const n = headerRow.n = (headerRow.n || 0) + 1;
    const row = el('div', { class: 'row header-row', dataset: existingKey ? { existing: existingKey } : {} },
      el('div', { class: 'field' },
        el('label', { for: 'header-key-' + n }, 'Header name'),
        el('input', { id: 'header-key-' + n, class: 'header-key', spellcheck: 'false', autocapitalize: 'off', value: existingKey || undefined, readonly: !!existingKey })),
      el('div', { class: 'field' },
        el('label', { for: 'header-value-' + n }, 'Header value'),
        el('input', { id: 'header-value-' + n, class: 'header-value', type: 'password', autocomplete: 'off', spellcheck: 'false',
          placeholder: existingKey ? 'Unchanged: enter a new value to replace it' : '' })),
      el('button', { type: 'button', class: 'btn remove', 'aria-label': 'Remove header ' + (existingKey || ''),
        onclick: () => { if (existingKey) removedHeaders.push(existingKey); row.remove(); } }, 'Remove'));
    return row;
  }

  // masked computes the URL to send (sensitive portions replaced by
  // {name}) and the URL variables; throws a message when one is wrong.
  function masked() {
    let url = F.url.value.trim();
    const vars = [];
    if (!$('#hook-mask').checked) return { url, vars };
    for (const row of $$('.mask-row')) {
      const value = $('.mask-value', row).value;
      const key = $('.mask-key', row).value.trim();
      if (row.dataset.existing) {
        if (value) vars.push({ key, value });
        continue;
      }
      if (!value && !key) continue;
      if (!/^[a-z0-9_]+$/.test(key)) throw new Error('“How it looks in the UI” must be lowercase letters, digits or underscores.');
      if (!value) throw new Error('Enter the sensitive portion of the URL for {' + key + '}.');
      if (url.includes(value)) url = url.split(value).join('{' + key + '}');
      else if (!url.includes('{' + key + '}')) throw new Error('The sensitive portion for {' + key + '} is not in the URL.');
      vars.push({ key, value });
    }
    return { url, vars };
  }

  function updatePreview() {
    const on = $('#hook-mask').checked;
    $('#mask-rows').hidden = !on;
    $('#mask-add').hidden = !on;
    let preview = '';
    try { preview = on ? masked().url : ''; } catch (e) { preview = ''; }
    $('#mask-preview').hidden = !on || !preview;
    $('#mask-preview-url').textContent = preview;
    $('#hook-url-changed').hidden = !(editing && F.url.value.trim() !== editing.url);
  }

  function updateBranchFilter() {
    const push = F.push_events.checked;
    const strategy = F.branch_filter_strategy.value;
    $('#branch-filter').hidden = !push;
    const input = $('#hook-branch');
    input.hidden = strategy === 'all_branches';
    input.placeholder = strategy === 'regex' ? 'Regular expression for branch names' : 'Branch name or wildcard pattern to trigger on (leave blank for all)';
  }

  $('#hook-mask').addEventListener('change', () => {
    if ($('#hook-mask').checked && !$('#mask-rows').children.length) $('#mask-rows').append(maskRow());
    updatePreview();
  });
  $('#mask-add').addEventListener('click', () => { const row = maskRow(); $('#mask-rows').append(row); $('.mask-value', row).focus(); });
  $('#header-add').addEventListener('click', () => { const row = headerRow(); $('#header-rows').append(row); $('.header-key', row).focus(); });
  F.url.addEventListener('input', updatePreview);
  form.addEventListener('change', (ev) => {
    if (ev.target.name === 'push_events' || ev.target.name === 'branch_filter_strategy') updateBranchFilter();
  });

  function resetForm(r) {
    form.reset();
    editing = null;
    removedHeaders = [];
    clear($('#mask-rows'));
    clear($('#header-rows'));
    clear($('#form-banners'));
    clear($('#form-test-slot'));
    $('#form-error').hidden = true;
    F.signing_token.type = 'password';
    F.signing_token.placeholder = 'whsec_…';
    $('#signing-generated').hidden = true;
    $('#signing-remove-label').hidden = true;
    $$('[data-group-only]', form).forEach((d) => { d.hidden = r.kind !== 'groups'; });
    $$('input, textarea, button', form).forEach((i) => { i.disabled = false; });
  }

  // A signing token is made here, in the browser, as GitLab's form does:
  // whsec_ and the base64 of 32 random bytes. It is shown once, to copy.
  $('#signing-generate').addEventListener('click', () => {
    const key = crypto.getRandomValues(new Uint8Array(32));
    F.signing_token.value = 'whsec_' + btoa(String.fromCharCode(...key));
    F.signing_token.type = 'text';
    $('#signing-generated').hidden = false;
    $('#signing-remove').checked = false;
    F.signing_token.select();
  });

  async function renderForm(r, id, seq) {
    let hook = null;
    if (id) {
      hook = (await api('GET', apiBase(r) + '/' + id)).data;
      if (!current(seq)) return;
    }
    resetForm(r);
    $('#form-cancel').href = hooksHref(r);
    $('#form-delete').hidden = true;
    $('#events').hidden = true;
    const tokenHelp = $('#hook-token-help');
    tokenHelp.textContent = 'Used to validate received payloads. Sent with the request in the X-Gitlab-Token HTTP header.';
    if (!hook) {
      $('#form-title').textContent = 'Add new webhook';
      $('#form-submit').textContent = 'Add webhook';
      F.push_events.checked = true;
      F.enable_ssl_verification.checked = true;
      F.trace_context.checked = true;
      F.token.placeholder = '';
    } else {
      editing = hook;
      const ro = readOnly(hook);
      $('#form-title').textContent = ro ? 'Webhook (configured in Caddy)' : 'Edit webhook';
      $('#form-submit').textContent = 'Save changes';
      const b = banner(hook, false, r);
      if (b) $('#form-banners').append(b);
      const blocked = blockedNote(hook);
      if (blocked) $('#form-banners').append(blocked);
      F.url.value = hook.url;
      F.name.value = hook.name || '';
      F.description.value = hook.description || '';
      F.token.placeholder = hook.token_present ? '•••••••• (set: leave blank to keep it)' : '';
      if (hook.token_present) tokenHelp.textContent += ' A token is set; leave the field blank to keep it.';
      if (hook.signing_token_present) {
        F.signing_token.placeholder = '•••••••• (set: leave blank to keep it)';
        $('#signing-remove-label').hidden = false;
      }
      F.custom_webhook_template.value = hook.custom_webhook_template || '';
      for (const f of Object.keys(labels)) if (F.namedItem(f)) F.namedItem(f).checked = hook[f] === true;
      F.branch_filter_strategy.value = hook.branch_filter_strategy || 'wildcard';
      F.push_events_branch_filter.value = hook.push_events_branch_filter || '';
      F.enable_ssl_verification.checked = hook.enable_ssl_verification !== false;
      F.ordered.checked = hook.ordered === true;
      F.trace_context.checked = hook.trace_context !== false;
      const vars = hook.url_variables || [];
      if (vars.length) {
        $('#hook-mask').checked = true;
        vars.forEach((v) => $('#mask-rows').append(maskRow(v.key)));
      }
      (hook.custom_headers || []).forEach((h) => $('#header-rows').append(headerRow(h.key)));
      $('#form-test-slot').append(testMenu(r, hook));
      if (ro) {
        $$('input, textarea, button:not(.menu-item)', form).forEach((i) => { i.disabled = true; });
        $('#form-submit').hidden = true;
        $('#form-error').textContent = 'This webhook is declared in the Caddy configuration: change it there.';
        $('#form-error').className = 'alert info';
        $('#form-error').hidden = false;
      } else {
        $('#form-delete').hidden = false;
        $('#form-delete').onclick = () => confirmDelete(r, hook);
      }
      $('#form-submit').hidden = ro;
    }
    updatePreview();
    updateBranchFilter();
    show('view-form', hook ? 'Edit webhook' : 'Add new webhook');
    if (hook) await renderEvents(r, hook, seq);
    if (!current(seq)) return;
    focusHeading('view-form');
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const r = parseRoute();
    const errBox = $('#form-error');
    errBox.hidden = true;
    errBox.className = 'alert danger';
    let m;
    try {
      m = masked();
      if (!m.url) throw new Error('Enter the URL of the webhook.');
    } catch (e) {
      errBox.textContent = e.message;
      errBox.hidden = false;
      errBox.focus();
      return;
    }
    const body = {
      name: F.name.value.trim(),
      description: F.description.value.trim(),
      enable_ssl_verification: F.enable_ssl_verification.checked,
      ordered: F.ordered.checked,
      trace_context: F.trace_context.checked,
      branch_filter_strategy: F.branch_filter_strategy.value,
      push_events_branch_filter: F.branch_filter_strategy.value === 'all_branches' ? '' : F.push_events_branch_filter.value.trim(),
    };
    // The URL as loaded may show masked user info: send it only when changed.
    if (!editing || m.url !== editing.url) body.url = m.url;
    for (const f of Object.keys(labels)) {
      const box = F.namedItem(f);
      if (box && !box.closest('[data-group-only]')?.hidden) body[f] = box.checked;
    }
    if (F.token.value) body.token = F.token.value;
    if (F.signing_token.value.trim()) body.signing_token = F.signing_token.value.trim();
    else if ($('#signing-remove').checked) body.signing_token = '';
    if (!editing ? F.custom_webhook_template.value.trim() : F.custom_webhook_template.value !== (editing.custom_webhook_template || '')) {
      body.custom_webhook_template = F.custom_webhook_template.value;
    }
    if (m.vars.length) body.url_variables = m.vars;
    const headers = [];
    for (const row of $$('.header-row')) {
      const key = $('.header-key', row).value.trim();
      const value = $('.header-value', row).value;
      if (!key && !value) continue;
      if (!key) { errBox.textContent = 'Enter the name of each custom header.'; errBox.hidden = false; return; }
      if (value || !row.dataset.existing) headers.push({ key, value });
    }
    if (headers.length) body.custom_headers = headers;
    const submit = $('#form-submit');
    submit.disabled = true;
    try {
      if (!editing) {
        await api('POST', apiBase(r), body);
        resetForm(r); // drop the typed secrets from the page
        flashNext('Webhook was created.', 'success');
        location.hash = hooksHref(r);
        return;
      }
      await api('PUT', apiBase(r) + '/' + editing.id, body);
      for (const key of removedHeaders) {
        await api('DELETE', apiBase(r) + '/' + editing.id + '/custom_headers/' + encodeURIComponent(key));
      }
      flashNext('Webhook was updated.', 'success');
      await render();
    } catch (err) {
      if (err.handled) return;
      errBox.textContent = err.message;
      errBox.hidden = false;
      errBox.setAttribute('tabindex', '-1');
      errBox.focus();
    } finally {
      submit.disabled = false;
    }
  });

  // ---- recent events ----------------------------------------------------

  function statusBadge(status) {
    const ok = /^2\d\d$/.test(String(status));
    return el('span', { class: 'badge ' + (ok ? 'success' : 'danger') }, String(status));
  }

  // triggerTitle turns a log's trigger (push_hooks) into GitLab's words (Push Hook).
  function triggerTitle(t) {
    return String(t).replace(/_hooks$/, '_hook').split('_').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(' ');
  }

  function seconds(d) { return (Number(d) || 0).toFixed(2) + ' sec'; }

  // ---- "Resend failed since…": a replay of the hook's failed deliveries --

  let replayHook = null; // the hook the replay form acts on

  function localInput(d) { // a Date as a datetime-local value
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
  }

  function resetReplay(r, hook) {
    replayHook = { r, hook };
    $('#replay').open = false;
    $('#replay-since').value = localInput(new Date(Date.now() - 24 * 3600 * 1000));
    $('#replay-result').textContent = '';
  }

  function replayText(res, dry) {
    const n = res.matched;
    const what = n === 1 ? '1 failed delivery' : n + ' failed deliveries';
    let text = dry ? what + ' since then would be sent again.' : (n ? what + ' queued to be sent again, after live deliveries.' : 'Nothing failed since then.');
    if (res.skipped && res.skipped.oversize) text += ' ' + res.skipped.oversize + ' cannot be: their payload was too large to keep.';
    for (const note of res.notes || []) text += ' Note: ' + note + '.';
    return text;
  }

  async function runReplay(dry) {
    if (!replayHook) return;
    const { r, hook } = replayHook;
    const since = new Date($('#replay-since').value);
    const out = $('#replay-result');
    if (isNaN(since)) { out.textContent = 'Enter the date and time to resend from.'; return; }
    const body = { since: since.toISOString(), status: 'failed' };
    if (dry) body.dry_run = true;
    $('#replay-submit').disabled = $('#replay-count').disabled = true;
    try {
      const { data } = await api('POST', apiBase(r) + '/' + hook.id + '/replay', body);
      out.textContent = replayText(data, dry);
      if (!dry) flash(replayText(data, false) + (data.id ? ' (replay ' + data.id + ')' : ''), 'success');
    } catch (err) {
      if (!err.handled) out.textContent = err.message;
    } finally {
      $('#replay-submit').disabled = $('#replay-count').disabled = false;
    }
  }

  $('#replay-count').addEventListener('click', () => runReplay(true));
  $('#replay-form').addEventListener('submit', (ev) => { ev.preventDefault(); runReplay(false); });

  async function renderEvents(r, hook, seq) {
    let res;
    try {
      res = await api('GET', apiBase(r) + '/' + hook.id + '/events?per_page=20&page=' + r.page);
    } catch (err) {
      if (err.status === 404 || err.status === 405) return; // an API without the delivery log
      throw err;
    }
    if (!current(seq)) return;
    const body = clear($('#events-table tbody'));
    for (const e of res.data) {
      body.append(el('tr', {},
        el('td', {}, statusBadge(e.response_status)),
        el('td', {}, el('span', { class: 'badge neutral' }, triggerTitle(e.trigger))),
        el('td', {}, seconds(e.execution_duration)),
        el('td', {}, timeEl(e.created_at)),
        el('td', {}, el('a', { href: hookHref(r, hook.id) + '/events/' + e.id }, 'View details'))));
    }
    $('#events-empty').hidden = res.data.length > 0;
    $('#events-table').hidden = res.data.length === 0;
    pager($('#events-pages'), res.headers, (p) => hookHref(r, hook.id) + '?page=' + p);
    resetReplay(r, hook);
    $('#events').hidden = false;
  }

  function headerText(h) {
    return Object.keys(h || {}).map((k) => k + ': ' + h[k]).join('\n');
  }

  function bodyText(b) {
    if (b === null || b === undefined || b === '') return '';
    if (typeof b === 'string') {
      try { return JSON.stringify(JSON.parse(b), null, 2); } catch (e) { return b; }
    }
    return JSON.stringify(b, null, 2);
  }

  async function renderEvent(r, seq) {
    const { data: e } = await api('GET', apiBase(r) + '/' + r.hook + '/events/' + r.event);
    if (!current(seq)) return;
    $('#event-back').href = hookHref(r, r.hook);
    const dl = clear($('#event-summary'));
    const row = (k, ...v) => dl.append(el('div', {}, el('dt', {}, k), el('dd', {}, ...v)));
    row('Response status', statusBadge(e.response_status));
    if (e.internal_error_message) row('Internal error', e.internal_error_message);
    row('Request URL', el('code', { class: 'break' }, e.url));
    row('Trigger', triggerTitle(e.trigger));
    row('Elapsed time', seconds(e.execution_duration));
    row('Request time', timeEl(e.created_at), ' ', el('span', { class: 'muted' }, '(' + new Date(e.created_at).toLocaleString() + ')'));
    $('#event-response-headers').textContent = headerText(e.response_headers) || '(none)';
    $('#event-response-body').textContent = bodyText(e.response_body) || '(empty)';
    $('#event-request-headers').textContent = headerText(e.request_headers) || '(none)';
    $('#event-request-body').textContent = bodyText(e.request_data) || '(empty)';
    const resend = $('#event-resend');
    resend.disabled = false;
    resend.onclick = () => resendEvent(r, resend);
    show('view-event', 'Request details');
    focusHeading('view-event');
  }

  async function resendEvent(r, button) {
    button.disabled = true;
    try {
      const { data } = await api('POST', apiBase(r) + '/' + r.hook + '/events/' + r.event + '/resend');
      const code = data && data.response_status;
      flashNext('Request resent: HTTP ' + code + '.', /^2\d\d$/.test(String(code)) ? 'success' : 'danger');
      location.hash = hookHref(r, r.hook);
    } catch (err) {
      button.disabled = false;
      if (!err.handled) flash('Resend failed: ' + err.message, 'danger');
    }
  }

  // ---- start ------------------------------------------------------------

  // The skip link moves focus without touching the hash (the router's).
  $('.skip').addEventListener('click', (ev) => { ev.preventDefault(); $('#main').focus(); });

  // What other scripts build their views with.
  window.WebhooksPage = {
    api, el, clear, show, flash, flashNext, fail, focusHeading, hooksHref, displayID,
    current, register: (v) => views.push(v),
  };

  window.addEventListener('hashchange', render);
  // After every deferred script has registered its views.
  document.addEventListener('DOMContentLoaded', () => {
    if (!location.hash && sessionStorage.getItem(SIGNED_KEY) && sessionStorage.getItem(LAST_KEY)) {
      location.replace(sessionStorage.getItem(LAST_KEY));
    } else {
      render();
    }
  });
}());
