// Threadline viewer: the thread list and a live message pane, over the REST API and /v1/events.
//
// Message content is untrusted. Everything from the server reaches the page through textContent,
// element properties and dataset only: never innerHTML, never a URL that is not http(s) or an
// image data: URL. The page's CSP forbids inline script as a second line of defence.
//
// Live updates use one fetch()-based SSE reader on /v1/events (EventSource cannot send the
// Authorization header). It remembers the last event id and sends it as Last-Event-ID when it
// reconnects, so a network drop or a server restart leaves no gap; messages are keyed by id, so a
// replayed event replaces its message instead of adding a second copy.

const KEY_STORAGE = 'threadline.apiKey';
const MESSAGE_PAGE = 50;
const THREAD_PAGE = 100;
const SUMMARY_BATCH = 100;
const STALL_MS = 45000; // the server pings every 15 s: this long without a byte means a dead link
const NEAR_EDGE_PX = 300;

const $ = (id) => document.getElementById(id);
const ui = {
  app: $('app'), status: $('status'), filter: $('filter'), threads: $('threads'),
  threadsEmpty: $('threads-empty'), title: $('thread-title'), threadId: $('thread-id'),
  messages: $('messages'), notice: $('notice'), composer: $('composer'), draft: $('draft'),
  send: $('send'), back: $('back'), keyDialog: $('key-dialog'), keyForm: $('key-form'),
  keyInput: $('key-input'), keyError: $('key-error'),
};

/** An element with a class and text; the only way this file turns data into DOM. */
function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const enc = encodeURIComponent;

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function notify(text) {
  ui.notice.textContent = text || '';
  ui.notice.hidden = !text;
}

// --- API key: asked once per browser session, only when the server answers 401 ---------------

let apiKey = sessionStorage.getItem(KEY_STORAGE) || '';
let keyPrompt = null;

function askKey(rejected) {
  if (!keyPrompt) {
    keyPrompt = new Promise((resolve) => {
      ui.keyError.hidden = !rejected;
      ui.keyInput.value = '';
      ui.keyForm.onsubmit = (event) => {
        event.preventDefault();
        const key = ui.keyInput.value.trim();
        if (!key) return;
        apiKey = key;
        sessionStorage.setItem(KEY_STORAGE, key);
        ui.keyDialog.close();
        keyPrompt = null;
        resolve(key);
      };
      setStatus('offline', 'API key needed');
      ui.keyDialog.showModal();
      ui.keyInput.focus();
    });
  }
  return keyPrompt;
}
// Nothing works without the key: Escape must not leave the page waiting on a closed dialog.
ui.keyDialog.addEventListener('cancel', (event) => event.preventDefault());

function withAuth(headers) {
  const all = { ...headers };
  if (apiKey) all.Authorization = `Bearer ${apiKey}`;
  return all;
}

/** fetch + JSON, asking for the key on 401 and trying again with it. */
async function api(path, options = {}) {
  for (;;) {
    const used = apiKey;
    const res = await fetch(path, { ...options, headers: withAuth(options.headers) });
    if (res.status === 401) {
      if (used === apiKey) await askKey(Boolean(used)); // else: a new key arrived meanwhile
      continue;
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const error = new Error(body?.error?.message || `HTTP ${res.status}`);
      error.status = res.status;
      throw error;
    }
    return body;
  }
}

// --- time ------------------------------------------------------------------------------------

const fmt = {
  time: new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' }),
  day: new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' }),
  date: new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' }),
  full: new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' }),
};

function timeNode(seconds) {
  const node = h('time');
  if (!Number.isFinite(seconds)) return node;
  const date = new Date(seconds * 1000);
  const now = new Date();
  const short = date.toDateString() === now.toDateString() ? fmt.time
    : date.getFullYear() === now.getFullYear() ? fmt.day : fmt.date;
  node.textContent = short.format(date);
  node.dateTime = date.toISOString();
  node.title = fmt.full.format(date);
  return node;
}

// --- thread list -----------------------------------------------------------------------------

const threads = new Map(); // id -> { thread, summary, li }
let current = null; // id of the thread shown in the pane (and selected in the list)
let threadsMore = false;
let loadingThreads = false;

const titleOf = (t) => t.thread.metadata?.title || t.summary?.preview || t.thread.id;
const newerFirst = (a, b) => (b.thread.created_at - a.thread.created_at)
  || (a.thread.id < b.thread.id ? 1 : a.thread.id > b.thread.id ? -1 : 0);

function matchesFilter(t) {
  const query = ui.filter.value.trim().toLowerCase();
  return !query || titleOf(t).toLowerCase().includes(query) || t.thread.id.toLowerCase().includes(query);
}

function renderThread(t) {
  const li = t.li;
  const count = t.summary ? `${t.summary.message_count} message${t.summary.message_count === 1 ? '' : 's'}` : '';
  const meta = h('span', 't-meta');
  meta.append(h('span', 't-count', count), timeNode(t.summary?.last_activity_at ?? t.thread.created_at));
  li.replaceChildren(h('span', 't-title', titleOf(t)), meta);
  li.title = t.thread.id;
  li.setAttribute('aria-selected', String(t.thread.id === current));
  li.hidden = !matchesFilter(t);
  if (t.thread.id === current) ui.title.textContent = titleOf(t);
}

function placeThread(t) {
  // Newest first; live threads are new, so the scan from the top is short.
  for (const li of ui.threads.children) {
    const other = threads.get(li.dataset.id);
    if (other && other !== t && newerFirst(t, other) < 0) {
      ui.threads.insertBefore(t.li, li);
      return;
    }
  }
  ui.threads.append(t.li);
}

function upsertThread(thread) {
  let t = threads.get(thread.id);
  if (t) {
    t.thread = thread;
  } else {
    const li = h('li');
    li.dataset.id = thread.id;
    li.setAttribute('role', 'option');
    t = { thread, summary: null, li };
    threads.set(thread.id, t);
    placeThread(t);
    wantSummary(thread.id);
  }
  renderThread(t);
  ui.threadsEmpty.hidden = threads.size > 0;
}

function removeThread(id) {
  const t = threads.get(id);
  if (t) {
    t.li.remove();
    threads.delete(id);
  }
  ui.threadsEmpty.hidden = threads.size > 0;
  if (current === id) {
    closePane();
    ui.title.textContent = 'Thread deleted';
    ui.threadId.textContent = id;
    ui.messages.replaceChildren(h('p', 'empty', 'This thread was deleted.'));
  }
}

/** Oldest loaded thread: the cursor for the next page (live threads are all newer). */
function oldestLoaded() {
  const last = ui.threads.lastElementChild;
  return last ? last.dataset.id : null;
}

async function loadThreads(more) {
  if (loadingThreads || (more && !threadsMore)) return;
  loadingThreads = true;
  try {
    const query = new URLSearchParams({ limit: String(THREAD_PAGE), order: 'desc' });
    const after = more ? oldestLoaded() : null;
    if (after) query.set('after', after);
    const page = await api(`/v1/threads?${query}`);
    if (!more) pruneThreads(page.data);
    for (const thread of page.data) upsertThread(thread);
    if (more || threads.size <= page.data.length) threadsMore = page.has_more;
  } finally {
    loadingThreads = false;
  }
}

/** After a reconnect: threads shown inside the span of a fresh first page but missing from it were
 * deleted while the stream was down. Threads newer than the page (made since) are left alone. */
function pruneThreads(fresh) {
  if (!fresh.length) return;
  const ids = new Set(fresh.map((thread) => thread.id));
  const oldest = { thread: fresh[fresh.length - 1] };
  const newest = { thread: fresh[0] };
  for (const t of [...threads.values()]) {
    if (!ids.has(t.thread.id) && newerFirst(newest, t) <= 0 && newerFirst(t, oldest) <= 0) {
      removeThread(t.thread.id);
    }
  }
}

// Counts, last activity and previews come in batches from /v1/thread_summaries, refreshed after
// any message event of a thread (the server knows the count; the page never guesses it).
const summaryWanted = new Set();
let summaryTimer = null;

function wantSummary(id) {
  summaryWanted.add(id);
  if (!summaryTimer) summaryTimer = setTimeout(flushSummaries, 150);
}

async function flushSummaries() {
  const ids = [...summaryWanted].filter((id) => threads.has(id)).slice(0, SUMMARY_BATCH);
  for (const id of ids) summaryWanted.delete(id);
  summaryWanted.forEach((id) => { if (!threads.has(id)) summaryWanted.delete(id); });
  try {
    if (ids.length) {
      const page = await api(`/v1/thread_summaries?ids=${ids.map(enc).join(',')}`);
      for (const summary of page.data) {
        const t = threads.get(summary.id);
        if (t) {
          t.summary = summary;
          renderThread(t);
        }
      }
    }
  } catch (error) {
    console.warn('summaries', error);
  } finally {
    summaryTimer = summaryWanted.size ? setTimeout(flushSummaries, 50) : null;
  }
}

function applyFilter() {
  for (const t of threads.values()) t.li.hidden = !matchesFilter(t);
  if (ui.filter.value && threadsMore) loadThreads(true);
}

function visibleItems() {
  return [...ui.threads.children].filter((li) => !li.hidden);
}

function moveSelection(delta) {
  const items = visibleItems();
  if (!items.length) return;
  const at = items.findIndex((li) => li.dataset.id === current);
  const next = items[at < 0 ? 0 : Math.max(0, Math.min(items.length - 1, at + delta))];
  openThread(next.dataset.id);
  if (items.indexOf(next) > items.length - 5) loadThreads(true);
}

// --- message pane ----------------------------------------------------------------------------

const pane = {
  gen: 0, // bumped on every open: late answers for a thread no longer shown are dropped
  loading: false,
  pending: [], // events that arrived while the newest page was loading
  byId: new Map(), // message id -> element
  oldestId: null,
  hasOlder: false,
  loadingOlder: false,
  top: null, // the note above the oldest loaded message
};

const SAFE_URL = /^(https?:|data:image\/)/i;

function imagePart(wrap, url) {
  wrap.classList.add('m-image');
  const text = typeof url === 'string' ? url : '';
  const label = text.startsWith('data:') ? `${text.slice(0, Math.max(5, text.indexOf(',')))},…`
    : text.length > 120 ? `${text.slice(0, 117)}…` : text;
  const button = h('button', null, 'load image');
  button.type = 'button';
  if (!SAFE_URL.test(text)) {
    button.disabled = true;
    button.title = 'Only http(s) and data:image URLs are loaded';
  }
  // Never loaded on its own: the URL may point anywhere, and loading it tells that host you read it.
  button.addEventListener('click', () => {
    const img = h('img');
    img.alt = `image: ${label}`;
    img.referrerPolicy = 'no-referrer';
    img.src = text;
    button.replaceWith(img);
  });
  wrap.append(h('span', null, 'Image'), button, h('span', 'url', label));
}

function partNode(part) {
  const wrap = h('div', 'm-part');
  const type = part?.type;
  if (type === 'text') {
    const value = typeof part.text === 'string' ? part.text : part.text?.value;
    wrap.append(h('p', 'm-text', value ?? ''));
  } else if (type === 'refusal') {
    wrap.append(h('p', 'm-text m-refusal', part.refusal ?? ''));
  } else if (type === 'image_url') {
    imagePart(wrap, part.image_url?.url);
  } else if (type === 'image_file') {
    wrap.append(h('span', 'muted', `[image file ${part.image_file?.file_id ?? ''}]`));
  } else {
    wrap.append(h('span', 'muted', `[${String(type)} part]`));
  }
  return wrap;
}

function messageNode(message) {
  const role = /^[a-z]+$/.test(message.role) ? message.role : 'other';
  const node = h('article', `msg role-${role}`);
  node.dataset.id = message.id;
  const head = h('div', 'm-head');
  head.append(h('span', 'm-role', role), timeNode(message.created_at));
  if (message.status && message.status !== 'completed') head.append(h('span', 'm-status', message.status));
  node.append(head);
  for (const part of Array.isArray(message.content) ? message.content : []) node.append(partNode(part));
  const files = (Array.isArray(message.attachments) ? message.attachments : [])
    .map((a) => a?.file_id).filter(Boolean);
  if (files.length) node.append(h('div', 'm-files', `Attachments: ${files.join(', ')}`));
  pane.byId.set(message.id, node);
  return node;
}

function updateTopNote() {
  if (!pane.top) return;
  pane.top.textContent = pane.loadingOlder ? 'Loading older messages…'
    : pane.hasOlder ? 'Scroll up for older messages' : pane.byId.size ? 'Beginning of thread' : 'No messages yet.';
}

const nearBottom = () => {
  const box = ui.messages;
  return box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_EDGE_PX;
};
const scrollToBottom = () => { ui.messages.scrollTop = ui.messages.scrollHeight; };

function closePane() {
  pane.gen += 1;
  pane.byId = new Map();
  pane.loading = false;
  pane.pending = [];
  ui.draft.disabled = true;
  ui.send.disabled = true;
}

async function openThread(id) {
  ui.app.classList.add('show-pane'); // narrow windows: the thread takes the window
  if (current === id && pane.byId.size) return;
  const previous = current && threads.get(current);
  current = id;
  if (previous) previous.li.setAttribute('aria-selected', 'false');
  const t = threads.get(id);
  if (t) {
    t.li.setAttribute('aria-selected', 'true');
    t.li.scrollIntoView({ block: 'nearest' });
  }
  ui.title.textContent = t ? titleOf(t) : id;
  ui.threadId.textContent = id;
  history.replaceState(null, '', `#${enc(id)}`);
  notify('');

  closePane();
  const gen = pane.gen;
  Object.assign(pane, { loading: true, hasOlder: false, oldestId: null, loadingOlder: false });
  pane.top = h('p', 'older');
  ui.messages.replaceChildren(pane.top);
  updateTopNote();
  pane.top.textContent = 'Loading…';
  try {
    // Only the newest page: a thread of any length opens at once; older pages come on scroll.
    const page = await api(`/v1/threads/${enc(id)}/messages?limit=${MESSAGE_PAGE}&order=desc`);
    if (gen !== pane.gen) return;
    for (const message of page.data.slice().reverse()) ui.messages.append(messageNode(message));
    pane.oldestId = page.last_id;
    pane.hasOlder = page.has_more;
    pane.loading = false;
    for (const [type, data] of pane.pending.splice(0)) applyMessageEvent(type, data);
    ui.draft.disabled = false;
    ui.send.disabled = false;
    updateTopNote();
    scrollToBottom();
    await fillViewport(gen);
  } catch (error) {
    if (gen !== pane.gen) return;
    pane.loading = false;
    pane.top.textContent = `Could not load messages: ${error.message}`;
  }
}

/** Load older pages until the pane can scroll (or the thread starts), so scroll-up works. */
async function fillViewport(gen) {
  const box = ui.messages;
  while (gen === pane.gen && pane.hasOlder && box.scrollHeight <= box.clientHeight + NEAR_EDGE_PX) {
    if (!(await loadOlder())) return;
  }
}

async function loadOlder() {
  if (!pane.hasOlder || pane.loadingOlder || pane.loading || !pane.oldestId) return false;
  const gen = pane.gen;
  pane.loadingOlder = true;
  updateTopNote();
  try {
    const url = `/v1/threads/${enc(current)}/messages?limit=${MESSAGE_PAGE}&order=desc&after=${enc(pane.oldestId)}`;
    const page = await api(url);
    if (gen !== pane.gen) return false;
    const box = ui.messages;
    const fromBottom = box.scrollHeight - box.scrollTop;
    const older = document.createDocumentFragment();
    for (const message of page.data.slice().reverse()) {
      if (!pane.byId.has(message.id)) older.append(messageNode(message));
    }
    pane.top.after(older);
    box.scrollTop = box.scrollHeight - fromBottom; // keep what the reader was looking at in place
    pane.oldestId = page.last_id ?? pane.oldestId;
    pane.hasOlder = page.has_more;
    return true;
  } catch (error) {
    if (gen === pane.gen) notify(`Could not load older messages: ${error.message}`);
    return false;
  } finally {
    if (gen === pane.gen) {
      pane.loadingOlder = false;
      updateTopNote();
    }
  }
}

/** After a reconnect: the stream replays created messages in order, but edits and deletions made
 * while it was down are read back from the newest page. Only messages shown before the page was
 * fetched are judged, so one created meanwhile is never taken for a deleted one; nothing is
 * appended here (the replay does that, in order). */
async function reconcileNewest() {
  if (!current || pane.loading) return;
  const gen = pane.gen;
  const before = new Set(pane.byId.keys());
  const page = await api(`/v1/threads/${enc(current)}/messages?limit=${MESSAGE_PAGE}&order=desc`);
  if (gen !== pane.gen || pane.loading) return;
  const fresh = new Map(page.data.map((message) => [message.id, message]));
  const shown = [...ui.messages.querySelectorAll('.msg')].map((node) => node.dataset.id);
  const oldest = page.data.length ? shown.indexOf(page.data[page.data.length - 1].id) : -1;
  const from = !page.has_more ? 0 : oldest;
  if (from < 0) return; // the page does not reach what is shown: nothing to compare
  for (const id of shown.slice(from)) {
    if (before.has(id) && !fresh.has(id)) applyMessageEvent('thread.message.deleted', { id });
  }
  for (const message of fresh.values()) {
    if (pane.byId.has(message.id)) applyMessageEvent('thread.message.updated', message);
  }
}

function applyMessageEvent(type, message) {
  const existing = pane.byId.get(message.id);
  if (type === 'thread.message.deleted') {
    if (!existing) return;
    existing.remove();
    pane.byId.delete(message.id);
    if (pane.oldestId === message.id) {
      // The cursor must name a message that still exists: the oldest one still shown.
      pane.oldestId = pane.top.nextElementSibling?.dataset.id ?? null;
      if (!pane.oldestId) pane.hasOlder = false;
    }
    updateTopNote();
    return;
  }
  if (!existing && type === 'thread.message.updated') return; // an older message not loaded
  const follow = nearBottom();
  const node = messageNode(message);
  if (existing) {
    existing.replaceWith(node);
  } else {
    node.classList.add('new');
    ui.messages.append(node);
    updateTopNote();
  }
  if (follow) scrollToBottom();
}

// --- events ----------------------------------------------------------------------------------

function onEvent(type, data) {
  if (type.startsWith('thread.message.')) {
    const threadId = data.thread_id ?? (pane.byId.has(data.id) ? current : null);
    if (!threadId) return;
    wantSummary(threadId);
    if (threadId !== current) return;
    if (pane.loading) pane.pending.push([type, data]);
    else applyMessageEvent(type, data);
  } else if (type === 'thread.created' || type === 'thread.updated') {
    upsertThread(data);
  } else if (type === 'thread.deleted') {
    removeThread(data.id);
  }
}

let lastEventId = null;

/** Read an SSE body: calls `dispatch(type, data)` per event, `alive()` per chunk. */
async function readEvents(body, alive, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  let type = '';
  let id = lastEventId;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    alive();
    buffer += value;
    let at;
    while ((at = buffer.search(/[\r\n]/)) >= 0) {
      if (buffer[at] === '\r' && at === buffer.length - 1) break; // "\r\n" may be split
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + (buffer[at] === '\r' && buffer[at + 1] === '\n' ? 2 : 1));
      if (line === '') {
        // The id counts once its event is whole: a half-read event is read again on resume.
        lastEventId = id;
        if (data.length) dispatch(type || 'message', data.join('\n'));
        data = [];
        type = '';
        continue;
      }
      if (line.startsWith(':')) continue; // ": ping"
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? '' : line.slice(colon + 1);
      if (text.startsWith(' ')) text = text.slice(1);
      if (field === 'data') data.push(text);
      else if (field === 'event') type = text;
      else if (field === 'id' && !text.includes('\0')) id = text;
    }
  }
}

function dispatch(type, text) {
  try {
    onEvent(type, JSON.parse(text));
  } catch (error) {
    console.error('event', type, error);
  }
}

async function followEvents() {
  let delay = 500;
  let connected = false;
  for (;;) {
    const abort = new AbortController();
    let stall = null;
    const alive = () => {
      clearTimeout(stall);
      stall = setTimeout(() => abort.abort(), STALL_MS);
    };
    try {
      const headers = withAuth({ Accept: 'text/event-stream' });
      if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId;
      const used = apiKey;
      alive();
      const res = await fetch('/v1/events', { headers, cache: 'no-store', signal: abort.signal });
      if (res.status === 401) {
        clearTimeout(stall);
        if (used === apiKey) await askKey(Boolean(used));
        continue;
      }
      if (res.status === 400 && lastEventId !== null) {
        lastEventId = null; // an id this server does not know: start afresh, then catch up below
        continue;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      setStatus('live', 'live');
      delay = 500;
      if (connected) {
        // Threads made, changed or deleted while away, and edits and deletions in the open thread.
        loadThreads(false).catch(() => {});
        reconcileNewest().catch(() => {});
      }
      connected = true;
      await readEvents(res.body, alive, dispatch);
    } catch (error) {
      if (error.name !== 'AbortError') console.warn('events', error);
    } finally {
      clearTimeout(stall);
    }
    setStatus('reconnecting', 'reconnecting…');
    await sleep(delay + Math.random() * 250);
    delay = Math.min(delay * 2, 5000);
  }
}

// --- composer --------------------------------------------------------------------------------

ui.composer.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = ui.draft.value;
  const threadId = current;
  if (!text.trim() || !threadId || ui.send.disabled) return;
  ui.send.disabled = true;
  try {
    const message = await api(`/v1/threads/${enc(threadId)}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ role: 'user', content: text }),
    });
    ui.draft.value = '';
    notify('');
    // Shown now; the stream's copy of the same id replaces it rather than adding a second one.
    if (threadId === current && !pane.loading) applyMessageEvent('thread.message.created', message);
    scrollToBottom();
  } catch (error) {
    notify(`Not sent: ${error.message}`);
  } finally {
    ui.send.disabled = threadId !== current || pane.loading;
    ui.draft.focus();
  }
});

ui.draft.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  } else if (event.key === 'Escape') {
    ui.threads.focus();
  }
});

// --- keyboard and pointer --------------------------------------------------------------------

ui.threads.addEventListener('click', (event) => {
  const li = event.target.closest('li');
  if (li) {
    openThread(li.dataset.id);
    ui.threads.focus();
  }
});
ui.threads.addEventListener('scroll', () => {
  const box = ui.threads;
  if (box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_EDGE_PX) loadThreads(true);
});
ui.messages.addEventListener('scroll', () => {
  if (ui.messages.scrollTop < NEAR_EDGE_PX) loadOlder();
});
ui.filter.addEventListener('input', applyFilter);
ui.back.addEventListener('click', () => {
  ui.app.classList.remove('show-pane');
  ui.threads.focus();
});

document.addEventListener('keydown', (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || ui.keyDialog.open) return;
  const target = event.target;
  if (target === ui.filter) {
    if (event.key === 'ArrowDown' || event.key === 'Enter') {
      event.preventDefault();
      const first = visibleItems()[0];
      if (first && !visibleItems().some((li) => li.dataset.id === current)) openThread(first.dataset.id);
      ui.threads.focus();
    } else if (event.key === 'Escape') {
      ui.filter.value = '';
      applyFilter();
      ui.threads.focus();
    }
    return;
  }
  if (target.closest('input, textarea, button, a')) return;
  const inList = target === ui.threads || target === document.body;
  switch (event.key) {
    case '/':
      event.preventDefault();
      ui.filter.focus();
      ui.filter.select();
      break;
    case 'j':
    case 'k':
      event.preventDefault();
      moveSelection(event.key === 'j' ? 1 : -1);
      break;
    case 'ArrowDown':
    case 'ArrowUp':
      if (!inList) return;
      event.preventDefault();
      moveSelection(event.key === 'ArrowDown' ? 1 : -1);
      break;
    case 'Enter':
      if (inList && current) {
        event.preventDefault();
        ui.draft.focus();
      }
      break;
    case 'Escape':
      ui.app.classList.remove('show-pane');
      ui.threads.focus();
      break;
    default:
  }
});

// --- start -----------------------------------------------------------------------------------

async function start() {
  followEvents();
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    try {
      await loadThreads(false);
      break;
    } catch (error) {
      setStatus('offline', `offline: ${error.message}`);
      await sleep(delay);
    }
  }
  ui.threadsEmpty.hidden = threads.size > 0;
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) openThread(wanted);
  else ui.threads.focus();
}

start();
