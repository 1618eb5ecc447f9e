// Chat integrations: GitLab's Slack, Mattermost, Discord, Microsoft Teams,
// Google Chat and Webex Teams notifications of a project or group, over the
// integrations API (…/integrations/:slug). The webhook is write-only: the API never returns
// it, so the field is empty on edit and left out of the request when it
// stays empty. Built with the helpers of app.js (window.WebhooksPage).
'use strict';

(function () {
  const P = window.WebhooksPage;
  const { api, el, clear } = P;
  const $ = (sel, root) => (root || document).querySelector(sel);

  const SERVICES = [
    { slug: 'slack', title: 'Slack notifications', channels: true, placeholder: 'https://hooks.slack.com/services/…', about: 'Send notifications about events to Slack.' },
    { slug: 'mattermost', title: 'Mattermost notifications', channels: true, placeholder: 'https://mattermost.example.com/hooks/…', about: 'Send notifications about events to Mattermost channels.' },
    { slug: 'discord', title: 'Discord Notifications', channels: false, placeholder: 'https://discord.com/api/webhooks/…', about: 'Send notifications about events to a Discord channel.' },
    { slug: 'microsoft-teams', title: 'Microsoft Teams notifications', channels: false, placeholder: 'https://outlook.office.com/webhook/…', about: 'Send notifications about events to Microsoft Teams.' },
    { slug: 'hangouts-chat', title: 'Google Chat', channels: false, noDeployments: true, placeholder: 'https://chat.googleapis.com/v1/spaces…', about: 'Send notifications from GitLab to a space in Google Chat.' },
    { slug: 'webex-teams', title: 'Webex Teams', channels: false, noDeployments: true, placeholder: 'https://api.ciscospark.com/v1/webhooks/incoming/…', about: 'Send notifications about project events to Webex Teams.' },
  ];

  // [channel name, API field, label, help], GitLab's chat events.
  const EVENTS = [
    ['push', 'push_events', 'Push', 'A push is made to the repository.'],
    ['issue', 'issues_events', 'Issue', 'An issue is created, closed, or reopened.'],
    ['confidential_issue', 'confidential_issues_events', 'Confidential issue', 'A confidential issue is created, closed, or reopened.'],
    ['merge_request', 'merge_requests_events', 'Merge request', 'A merge request is created, merged, closed, or reopened.'],
    ['note', 'note_events', 'Note', 'A comment is added.'],
    ['confidential_note', 'confidential_note_events', 'Confidential note', 'An internal note or comment on a confidential issue is added.'],
    ['tag_push', 'tag_push_events', 'Tag push', 'A new tag is pushed to the repository or removed.'],
    ['pipeline', 'pipeline_events', 'Pipeline', 'A pipeline status changes.'],
    ['wiki_page', 'wiki_page_events', 'Wiki page', 'A wiki page is created or updated.'],
    ['deployment', 'deployment_events', 'Deployment', 'A deployment starts, finishes, fails, or is canceled.'],
    // Slack and Mattermost only (GitLab's supported events of each).
    ['incident', 'incident_events', 'Incident', 'An incident is created, closed, or reopened.', 'slack'],
    ['alert', 'alert_events', 'Alert', 'A new, unique alert is recorded.', 'slack'],
    ['vulnerability', 'vulnerability_events', 'Vulnerability', 'A new, unique vulnerability is recorded.', 'slack'],
    ['group_mention', 'group_mention_events', 'Group mention in public', 'A group is mentioned in a public context.', 'group'],
    ['group_confidential_mention', 'group_confidential_mention_events', 'Group mention in private', 'A group is mentioned in a confidential context.', 'group'],
  ];

  // The events a service takes, for a project or group (GitLab's
  // supported_events: group mentions at group level only).
  function eventsOf(svc, r) {
    return EVENTS.filter(([name, , , , only]) => {
      if (only === 'group') return svc.channels && r.kind === 'groups';
      if (only === 'slack') return svc.channels;
      return !(name === 'deployment' && svc.noDeployments);
    });
  }

  const BRANCHES = [['all', 'All branches'], ['default', 'Default branch'], ['protected', 'Protected branches'], ['default_and_protected', 'Default branch and protected branches']];

  // #/projects/<id>/integrations[/<slug>]
  const ROUTE = /^#\/(projects|groups)\/([^/?]+)\/integrations(?:\/(slack|mattermost|discord|microsoft-teams|hangouts-chat|webex-teams))?\/?$/;
  const HOOKS = /^#\/(projects|groups)\/([^/?]+)\/hooks/;

  function route(hash) {
    const m = ROUTE.exec(hash);
    return m ? { kind: m[1], id: m[2], service: m[3] || null, page: 1 } : null;
  }

  function listHref(r) { return '#/' + r.kind + '/' + r.id + '/integrations'; }
  function apiPath(r, slug) { return '/' + r.kind + '/' + r.id + '/integrations' + (slug ? '/' + slug : ''); }

  async function render(r, seq) {
    if (r.service) await renderForm(r, seq);
    else await renderList(r, seq);
  }

  async function renderList(r, seq) {
    const { data } = await api('GET', apiPath(r));
    if (!P.current(seq)) return;
    const active = {};
    for (const i of data || []) active[i.slug] = i;
    $('#integrations-back').href = P.hooksHref(r);
    const list = clear($('#integration-list'));
    for (const s of SERVICES) {
      const i = active[s.slug];
      let badge = el('span', { class: 'badge' }, 'Not configured');
      if (i && i.inherited) badge = el('span', { class: 'badge info' }, 'Inherited from a group');
      else if (i) badge = el('span', { class: 'badge success' }, 'Active');
      list.append(el('li', { class: 'hook card', dataset: { service: s.slug } },
        el('div', { class: 'hook-main' },
          el('a', { href: listHref(r) + '/' + s.slug, class: 'hook-url' }, s.title), ' ', badge,
          el('p', { class: 'muted small' }, s.about))));
    }
    P.show('view-integrations', 'Chat integrations');
    P.focusHeading('view-integrations');
  }

  function field(id, label, input, help) {
    return el('div', { class: 'field' }, el('label', { for: id }, label), input, help ? el('p', { class: 'help' }, help) : null);
  }

  function select(id, name, options, value) {
    const s = el('select', { id, name });
    for (const [v, label] of options) s.append(el('option', { value: v, selected: v === value }, label));
    return s;
  }

  async function renderForm(r, seq) {
    const svc = SERVICES.find((s) => s.slug === r.service);
    // The list says whether it is set up (own or inherited), so a new one
    // is not a 404.
    const { data: active } = await api('GET', apiPath(r));
    let cur = null;
    if ((active || []).some((i) => i.slug === svc.slug)) cur = (await api('GET', apiPath(r, svc.slug))).data;
    if (!P.current(seq)) return;
    const own = cur && !cur.inherited;
    const props = (cur && cur.properties) || {};
    $('#integration-title').textContent = svc.title;
    $('#integration-back').href = listHref(r);
    const banner = clear($('#integration-banner'));
    if (cur && cur.inherited) {
      banner.append(el('p', { class: 'alert info' }, 'This uses the settings of a group. Saving here gives this ' +
        (r.kind === 'groups' ? 'group' : 'project') + ' its own; enter the webhook again.'));
    }

    const form = clear($('#integration-form'));
    const webhookHelp = own
      ? 'The webhook is secret and not shown. Leave it empty to keep the current one.'
      : 'The incoming webhook URL the chat gave you.';
    form.append(field('int-webhook', 'Webhook',
      el('input', { id: 'int-webhook', name: 'webhook', type: 'url', required: !own, placeholder: svc.placeholder, spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off' }),
      webhookHelp));
    if (svc.channels) {
      form.append(
        field('int-username', 'Username', el('input', { id: 'int-username', name: 'username', value: props.username || '', placeholder: 'GitLab' })),
        field('int-channel', 'Channel', el('input', { id: 'int-channel', name: 'channel', value: props.channel || '', placeholder: '#general' }),
          'The channel to post to when an event has no channel of its own; empty: the webhook\'s.'));
    }
    const trig = el('fieldset', { class: 'field triggers' }, el('legend', {}, 'Trigger'));
    for (const [name, apiField, label, help, only] of eventsOf(svc, r)) {
      const on = cur ? !!cur[apiField] : name !== 'deployment' && !only;
      const box = el('div', { class: 'trigger' },
        el('label', { class: 'inline' }, el('input', { type: 'checkbox', name: apiField, checked: on }), ' ', el('strong', {}, label)),
        el('p', { class: 'help' }, help));
      if (svc.channels) {
        const id = 'int-' + name + '-channel';
        box.append(el('label', { for: id, class: 'sr-only' }, label + ' channel'),
          el('input', { id, name: name + '_channel', value: props[name + '_channel'] || '', placeholder: 'Channel (optional)' }));
      }
      trig.append(box);
    }
    form.append(trig);
    form.append(
      el('fieldset', { class: 'field' }, el('legend', {}, 'Notification settings'),
        el('label', { class: 'inline' }, el('input', { type: 'checkbox', id: 'int-broken', name: 'notify_only_broken_pipelines', checked: cur ? !!props.notify_only_broken_pipelines : true }), ' Notify only broken pipelines')),
      field('int-branches', 'Branches for which notifications are to be sent', select('int-branches', 'branches_to_be_notified', BRANCHES, props.branches_to_be_notified || 'default'),
        'The default branch is the payload\'s project.default_branch; a branch is protected when the payload says so (ref_protected), or matches the patterns below.'),
      field('int-protected', 'Protected branches', el('input', { id: 'int-protected', name: 'protected_branches', value: props.protected_branches || '', placeholder: 'main, release/*' }),
        'Wildcard patterns, comma-separated. Empty: the default branch is the protected one.'),
      field('int-labels', 'Labels to be notified', el('input', { id: 'int-labels', name: 'labels_to_be_notified', value: props.labels_to_be_notified || '', placeholder: '~backend,~frontend' }),
        'Send notifications for issue, merge request, and comment events with the listed labels only. Leave blank to receive notifications for all events.'),
      field('int-label-behavior', 'Labels to be notified behavior', select('int-label-behavior', 'labels_to_be_notified_behavior',
        [['match_any', 'Match any of the labels'], ['match_all', 'Match all of the labels']], props.labels_to_be_notified_behavior || 'match_any')),
      el('p', { id: 'integration-error', class: 'alert danger', role: 'alert', hidden: true }),
      el('div', { class: 'actions' },
        el('button', { type: 'submit', id: 'integration-save', class: 'btn primary' }, 'Save changes'),
        el('button', { type: 'button', id: 'integration-test', class: 'btn', onclick: () => testSettings(r, svc, form) }, 'Test settings'),
        el('a', { class: 'btn', href: listHref(r) }, 'Cancel'),
        el('span', { class: 'grow' }),
        own ? el('button', { type: 'button', id: 'integration-delete', class: 'btn danger', onclick: () => remove(r, svc) }, 'Delete') : null));
    form.onsubmit = (ev) => { ev.preventDefault(); save(r, svc, form); };
    P.show('view-integration', svc.title);
    P.focusHeading('view-integration');
  }

  // GitLab's "Test settings": the form as it is, not saved. Every answer
  // is 200; a failed test says so in its body (error, message,
  // service_response).
  async function testSettings(r, svc, form) {
    const res = await send('#integration-test', apiPath(r, svc.slug) + '/test', formBody(r, svc, form));
    if (!res) return;
    if (res.data && res.data.error) {
      showError(res.data.message + (res.data.service_response ? ' ' + res.data.service_response : ''));
      return;
    }
    P.flash('Connection successful.', 'success');
  }

  async function save(r, svc, form) {
    if (!await send('#integration-save', apiPath(r, svc.slug), formBody(r, svc, form))) return;
    P.flashNext(svc.title + ' saved.', 'success');
    location.hash = listHref(r);
  }

  // send PUTs the form with its button disabled; a refused request is shown
  // in the form's error box and gives null.
  async function send(buttonSel, path, body) {
    showError('');
    const button = $(buttonSel);
    button.disabled = true;
    try {
      return await api('PUT', path, body);
    } catch (err) {
      if (!err.handled) showError(err.message);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  function showError(message) {
    const errBox = $('#integration-error');
    errBox.textContent = message;
    errBox.hidden = !message;
  }

  function formBody(r, svc, form) {
    const f = form.elements;
    const body = {};
    const webhook = f.webhook.value.trim();
    if (webhook) body.webhook = webhook;
    for (const [name, apiField] of eventsOf(svc, r)) {
      body[apiField] = f[apiField].checked;
      if (svc.channels) body[name + '_channel'] = f[name + '_channel'].value.trim();
    }
    if (svc.channels) {
      body.username = f.username.value.trim();
      body.channel = f.channel.value.trim();
    }
    body.notify_only_broken_pipelines = f.notify_only_broken_pipelines.checked;
    for (const name of ['branches_to_be_notified', 'protected_branches', 'labels_to_be_notified', 'labels_to_be_notified_behavior']) {
      body[name] = f[name].value.trim();
    }
    return body;
  }

  async function remove(r, svc) {
    try {
      await api('DELETE', apiPath(r, svc.slug));
    } catch (err) {
      P.fail(err);
      return;
    }
    P.flashNext(svc.title + ' deleted.', 'success');
    location.hash = listHref(r);
  }

  // The hooks list links here.
  function linkFromHooks() {
    const m = HOOKS.exec(location.hash);
    if (m) $('#hooks-integrations').href = listHref({ kind: m[1], id: m[2] });
  }
  window.addEventListener('hashchange', linkFromHooks);
  linkFromHooks();

  P.register({ route, render });
}());
