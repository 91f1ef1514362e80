// Switchyard's browser page: a messenger over the WebSocket JSON protocol
// (protocols/wsjson/README.md). Plain JavaScript, no build step. Every
// piece of text from the network goes into the page as a text node: no
// innerHTML anywhere.
//
// The connection logs in with a password once, then with the session token
// it was given (kept in sessionStorage, so it lives as long as the tab). When
// the socket drops it reconnects with exponential backoff and jitter, logs in
// with the token, and joins every room again with the last seq and epoch it
// saw, so each message is shown once. Messages typed meanwhile stay pending
// and are sent again with the same client_id, which the room deduplicates.

const PROTOCOL = 'switchyard.v1';
const WS_PATH = '/ws';
const SESSION_KEY = 'switchyard.session';
const ROOMS_KEY = 'switchyard.rooms';
const PSM_KEY = 'switchyard.psm';
const CLIENT_NAME = 'Switchyard web 1.0';

const RECONNECT_BASE_MS = 1000;
const RECONNECT_MAX_MS = 30000;
const PING_IDLE_MS = 25000;      // a ping after this long without a word from the server
const PING_TIMEOUT_MS = 10000;   // and the connection is given up this long after that
const LOGIN_TIMEOUT_MS = 20000;
const TYPING_SEND_EVERY_MS = 4000;
const TYPING_SHOW_MS = 6000;
const PEER_JOIN_WAIT_MS = 20000;
const NUDGE_COOLDOWN_MS = 3000;

const STATUS_LABELS = {
  online: 'Online', busy: 'Busy', idle: 'Idle', be_right_back: 'Be right back', away: 'Away',
  on_the_phone: 'On the phone', out_to_lunch: 'Out to lunch', invisible: 'Appear offline', offline: 'Offline',
};
const STATUS_RANK = { online: 0, busy: 1, on_the_phone: 1, idle: 2, be_right_back: 2, away: 2, out_to_lunch: 2, offline: 9 };

const ERROR_TEXT = {
  unauthenticated: 'The email address or password is wrong.',
  backend_unavailable: 'The server is busy. Trying again…',
  invalid_text: 'That is not a valid email address.',
  already_on_list: 'Already there.',
  not_on_list: 'Not on the list.',
  unknown_object: 'No such account or room.',
  not_allowed: 'Not allowed.',
  offline: 'They are offline.',
  room_full: 'The room is full.',
  list_full: 'Your contact list is full.',
  rate_limited: 'Slow down a little.',
  oversize: 'Too long.',
  disconnected: 'Not connected. It will be sent when the connection is back.',
};

// ------------------------------------------------------------------ DOM helpers

const $ = (id) => document.getElementById(id);

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const ICONS = {
  send: 'M3.4 20.4 21 12 3.4 3.6l-.01 6.53L15 12 3.39 13.87z',
  nudge: 'M7 3h10a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 2v14h10V5zM1 8h2v8H1zm20 0h2v8h-2z',
  plus: 'M11 5h2v6h6v2h-6v6h-2v-6H5v-2h6z',
  close: 'M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6 10.6 12 5 6.4z',
  more: 'M5 10a2 2 0 1 1 0 4 2 2 0 0 1 0-4zm7 0a2 2 0 1 1 0 4 2 2 0 0 1 0-4zm7 0a2 2 0 1 1 0 4 2 2 0 0 1 0-4z',
  signout: 'M10 3h9a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2h-9v-2h9V5h-9zm-.6 5 1.4 1.4L8.2 12H16v2H8.2l2.6 2.6L9.4 18l-5-5z',
  invite: 'M9 4a4 4 0 1 1 0 8 4 4 0 0 1 0-8zm0 2a2 2 0 1 0 0 4 2 2 0 0 0 0-4zm0 8c3.3 0 7 1.6 7 4v2H2v-2c0-2.4 3.7-4 7-4zm0 2c-2.6 0-4.6 1.1-5 2h10c-.4-.9-2.4-2-5-2zm10-7h2v2h2v2h-2v2h-2v-2h-2v-2h2z',
  leave: 'M5 3h9a2 2 0 0 1 2 2v3h-2V5H5v14h9v-3h2v3a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm12.6 5L22 12l-4.4 4-1.4-1.4 2-1.6H9v-2h9.2l-2-1.6z',
  chevron: 'M7.4 8.6 12 13.2l4.6-4.6L18 10l-6 6-6-6z',
  back: 'M15.4 7.4 10.8 12l4.6 4.6L14 18l-6-6 6-6z',
};

function icon(name) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('fill', 'currentColor');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  if (name === 'chevron') svg.classList.add('chevron');
  return svg;
}

function hue(text) {
  let x = 0;
  for (const ch of String(text)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return 'hue-' + (x % 8);
}

function initials(name) {
  const words = String(name || '?').replace(/@.*/, '').split(/[\s._-]+/).filter(Boolean);
  const letters = words.slice(0, 2).map((w) => [...w][0]).join('');
  return (letters || '?').toUpperCase();
}

function avatar(name, key, dotStatus, extra = '') {
  const el = h('div', { class: `avatar ${hue(key)} ${extra}`, 'aria-hidden': 'true' }, initials(name));
  if (dotStatus) el.append(h('span', { class: `dot ${dotClass(dotStatus)}` }));
  return el;
}

function dotClass(status) {
  if (status === 'online') return 'online';
  if (status === 'busy' || status === 'on_the_phone') return 'busy';
  if (status === 'invisible') return 'invisible';
  if (!status || status === 'offline') return 'offline';
  return 'away';
}

// Text with web links made clickable; everything is a text node.
function richText(text) {
  const out = [];
  const re = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
  let at = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > at) out.push(text.slice(at, m.index));
    out.push(h('a', { href: m[0], target: '_blank', rel: 'noopener noreferrer' }, m[0]));
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });

function dayLabel(ms) {
  const d = new Date(ms);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86400000);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return dayFormat.format(d);
}

function errorText(err) {
  if (!err) return 'Something went wrong.';
  return ERROR_TEXT[err.code] || err.reason || err.code || 'Something went wrong.';
}

function toast(text, kind = '') {
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  $('toasts').append(el);
  setTimeout(() => el.remove(), 3500);
}

// ------------------------------------------------------------------ state

const state = {
  me: null,                 // {handle, display_name, status, personal_message}
  groups: [],               // [{id, name}]
  contacts: new Map(),      // handle -> {handle, display_name, lists, groups, contact_id}
  presence: new Map(),      // handle -> {status, display_name, personal_message, current_media}
  rooms: new Map(),         // room id -> room (see newRoom)
  tabs: [],                 // rooms with an open tab, in tab order
  active: null,             // the room on screen
  collapsed: new Set(),     // group keys folded in the contact list
  filter: '',
};

const conn = {
  ws: null,
  phase: 'offline',         // offline | connecting | online | waiting (for a retry) | stopped
  loggedIn: false,          // a login succeeded on this page (reconnects use the token)
  attempt: 0,
  retryTimer: 0,
  retryAt: 0,
  countdown: 0,
  nextId: 1,
  waiting: new Map(),       // request id -> {resolve, reject}
  lastHeard: 0,
  pingTimer: 0,
  credentials: null,        // {handle, password, status}: only until the first login answers
};

function loadSession() {
  try { return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null'); } catch { return null; }
}
function saveSession(s) { sessionStorage.setItem(SESSION_KEY, JSON.stringify(s)); }
function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
  sessionStorage.removeItem(ROOMS_KEY);
  sessionStorage.removeItem(PSM_KEY);
}

// Rooms survive a reload of the tab: their ids and names, to join again.
function saveRooms() {
  const list = [];
  for (const r of state.rooms.values()) {
    if (r.id && !r.ended) list.push({ id: r.id, name: r.name || null, peers: r.peers, tab: state.tabs.includes(r) });
  }
  sessionStorage.setItem(ROOMS_KEY, JSON.stringify(list));
}
function loadRooms() {
  try { return JSON.parse(sessionStorage.getItem(ROOMS_KEY) || '[]'); } catch { return []; }
}

// ------------------------------------------------------------------ connection

function wsUrl() {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + WS_PATH;
}

function setPhase(phase) {
  conn.phase = phase;
  $('app').dataset.connection = phase;
  renderConnection();
  if (state.me) {
    renderMe();
    renderHeader();
  }
}

function connect() {
  clearTimeout(conn.retryTimer);
  clearInterval(conn.countdown);
  if (conn.ws) return;
  let ws;
  try {
    ws = new WebSocket(wsUrl(), PROTOCOL);
  } catch {
    scheduleReconnect();
    return;
  }
  conn.ws = ws;
  setPhase('connecting');
  ws.addEventListener('open', () => { if (conn.ws === ws) sendLogin(); });
  ws.addEventListener('message', (ev) => {
    if (conn.ws !== ws) return;
    conn.lastHeard = Date.now();
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg && typeof msg === 'object') handleMessage(msg);
  });
  ws.addEventListener('close', (ev) => { if (conn.ws === ws) connectionLost(ev.code, ev.reason); });
}

// Forgets the socket at once (its close event may come much later on a dead
// network) and settles everything that waited on it.
function connectionLost(code, reason) {
  const ws = conn.ws;
  conn.ws = null;
  clearInterval(conn.pingTimer);
  if (ws && ws.readyState <= WebSocket.OPEN) {
    try { ws.close(); } catch { /* already closing */ }
  }
  const waiting = [...conn.waiting.values()];
  conn.waiting.clear();
  for (const w of waiting) w.reject({ code: 'disconnected', reason: 'the connection was lost' });
  for (const room of state.rooms.values()) {
    room.joined = false;
    room.joining = false;
    for (const t of room.typing.values()) clearTimeout(t);
    room.typing.clear();
    for (const p of room.pending.values()) if (p.status === 'sending') p.status = 'queued';
  }
  if (conn.phase === 'stopped') return;
  if (!conn.loggedIn && !loadSession()) {
    // The first login never got through: back to the form.
    showLogin(code === 1008 ? ERROR_TEXT.unauthenticated : 'Could not reach the server. Check your connection.');
    setPhase('stopped');
    return;
  }
  renderAll();
  scheduleReconnect();
}

function scheduleReconnect() {
  clearTimeout(conn.retryTimer);
  clearInterval(conn.countdown);
  // Exponential backoff with jitter: between half and all of the doubled delay.
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(conn.attempt, 10));
  const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
  conn.attempt += 1;
  conn.retryAt = Date.now() + delay;
  conn.retryTimer = setTimeout(connect, delay);
  conn.countdown = setInterval(renderConnection, 1000);
  setPhase('waiting');
}

function retryNow() {
  if (conn.phase === 'waiting') connect();
}

// A connection the network dropped without a word can look open for
// minutes: silence past the ping's timeout counts as a drop.
function startPing() {
  clearInterval(conn.pingTimer);
  conn.lastHeard = Date.now();
  conn.pingTimer = setInterval(() => {
    if (!conn.ws || conn.phase !== 'online') return;
    const silent = Date.now() - conn.lastHeard;
    if (silent > PING_IDLE_MS + PING_TIMEOUT_MS) connectionLost(1006, 'no answer to ping');
    else if (silent >= PING_IDLE_MS) request('ping').catch(() => {});
  }, 5000);
}

function request(type, fields = {}) {
  return new Promise((resolve, reject) => {
    const ws = conn.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      reject({ code: 'disconnected', reason: 'not connected' });
      return;
    }
    const id = conn.nextId++;
    conn.waiting.set(id, { resolve, reject });
    ws.send(JSON.stringify({ ...fields, type, id }));
  });
}

// A request whose success needs no answer (typing): sent without an id.
function notify(type, fields = {}) {
  const ws = conn.ws;
  if (ws && ws.readyState === WebSocket.OPEN && conn.phase === 'online') ws.send(JSON.stringify({ ...fields, type }));
}

async function sendLogin() {
  const saved = loadSession();
  const login = { version: 1, client: CLIENT_NAME };
  if (conn.credentials) {
    login.handle = conn.credentials.handle;
    login.password = conn.credentials.password;
    login.status = conn.credentials.status;
  } else if (saved && saved.token) {
    login.token = saved.token;
    login.status = (state.me && state.me.status) || saved.status || 'online';
  } else {
    setPhase('stopped');
    showLogin();
    return;
  }
  const ws = conn.ws;
  const timer = setTimeout(() => { if (conn.ws === ws) connectionLost(1006, 'no answer to login'); }, LOGIN_TIMEOUT_MS);
  try {
    const result = await request('login', login);
    clearTimeout(timer);
    conn.credentials = null;
    loggedIn(result);
  } catch (err) {
    clearTimeout(timer);
    if (err.code === 'disconnected') return;  // connectionLost decides
    if ((err.code === 'backend_unavailable' || err.code === 'rate_limited') && !conn.credentials) {
      connectionLost(1013, err.reason);       // the token is still good: later
      return;
    }
    // Refused: a wrong password, or a token that no longer works.
    const tokenLogin = !conn.credentials;
    conn.credentials = null;
    setPhase('stopped');
    if (conn.ws) conn.ws.close();
    conn.ws = null;
    clearSession();
    resetState();
    const busy = err.code === 'backend_unavailable' || err.code === 'rate_limited';
    showLogin(busy ? 'The server is busy. Please try again in a moment.'
      : tokenLogin ? 'Your session has ended. Please sign in again.' : errorText(err));
  }
}

function loggedIn(r) {
  const first = !conn.loggedIn;
  conn.loggedIn = true;
  conn.attempt = 0;
  const psm = state.me ? state.me.personal_message : (sessionStorage.getItem(PSM_KEY) || '');
  state.me = { handle: r.handle, display_name: r.display_name, status: r.status, personal_message: psm };
  saveSession({ token: r.token, handle: r.handle, status: r.status });
  state.groups = r.roster.groups || [];
  state.contacts.clear();
  for (const c of r.roster.contacts || []) {
    state.contacts.set(c.handle, {
      handle: c.handle, display_name: c.display_name, lists: c.lists || [], groups: c.groups || [],
      contact_id: c.contact_id,
    });
    state.presence.set(c.handle, {
      status: c.status || 'offline', display_name: c.display_name,
      personal_message: c.personal_message || '', current_media: c.current_media || '',
    });
  }
  setPhase('online');
  startPing();
  showMain();
  if (first) {
    for (const saved of loadRooms()) {
      if (state.rooms.has(saved.id)) continue;
      const room = newRoom(saved.id, { name: saved.name, peers: saved.peers || [] });
      room.restored = true;
      if (saved.tab) openTab(room, false);
    }
  }
  for (const room of new Set([...state.rooms.values(), ...state.tabs])) {
    if (room.id && !room.ended) joinRoom(room);
    else if (room.pending.size) flushPending(room);
  }
  renderAll();
}

// ------------------------------------------------------------------ incoming

function handleMessage(m) {
  switch (m.type) {
    case 'reply':
    case 'error': {
      const w = m.id != null ? conn.waiting.get(m.id) : null;
      if (w) {
        conn.waiting.delete(m.id);
        if (m.type === 'reply') w.resolve(m.result || {});
        else w.reject({ code: m.code, reason: m.reason });
      } else if (m.type === 'error' && m.request !== 'typing') {
        console.warn('switchyard:', m.code, m.reason);
      }
      return;
    }
    case 'presence': return onPresence(m);
    case 'roster_change': return onRosterChange(m);
    case 'invite': return onInvite(m);
    case 'signed_out':
      setPhase('stopped');
      clearSession();
      resetState();
      showLogin(m.reason === 'account removed'
        ? 'Your account was removed, so this page signed out.'
        : 'You signed in somewhere else, so this page signed out.');
      return;
    case 'message':
    case 'joined':
    case 'left':
    case 'typing':
    case 'nudge':
    case 'notice': {
      const room = state.rooms.get(m.room);
      if (room) onRoomEvent(room, m);
      return;
    }
    default:
      return;  // newer servers may send more
  }
}

function onPresence(p) {
  state.presence.set(p.user, {
    status: p.status, display_name: p.display_name,
    personal_message: p.personal_message || '', current_media: p.current_media || '',
  });
  renderContacts();
  if (state.active && roomPeers(state.active).includes(p.user)) renderHeader();
  renderTabs();
}

function onRosterChange(c) {
  let entry = state.contacts.get(c.handle);
  if (c.op === 'add') {
    if (!entry) {
      entry = { handle: c.handle, display_name: c.display_name, lists: [], groups: [], contact_id: '' };
      state.contacts.set(c.handle, entry);
    }
    if (!entry.lists.includes(c.list)) entry.lists.push(c.list);
    if (c.list === 'reverse' && !entry.lists.includes('forward')) {
      toast(`${c.display_name || c.handle} added you as a contact.`);
    }
  } else if (c.op === 'remove' && entry) {
    entry.lists = entry.lists.filter((l) => l !== c.list);
    if (!entry.lists.length) state.contacts.delete(c.handle);
  } else if (c.op === 'rename' && entry) {
    entry.display_name = c.display_name;
  }
  renderContacts();
}

function onInvite(inv) {
  let room = state.rooms.get(inv.room);
  if (room) {
    // Asked back into a conversation this page knows: resume it.
    room.ended = false;
    if (!room.joined && !room.joining) joinRoom(room);
    return;
  }
  room = newRoom(inv.room, { peers: [inv.from] });
  room.names.set(inv.from, inv.from_name);
  room.invited = true;
  joinRoom(room);
}

function onRoomEvent(room, m) {
  switch (m.type) {
    case 'message': {
      const mine = state.me && m.from === state.me.handle;
      if (mine && m.client_id) room.pending.delete(m.client_id);
      const added = addMessage(room, m);
      if (!mine) stopTyping(room, m.from);
      if (added && !mine) noticeActivity(room);
      break;
    }
    case 'joined':
      room.members.set(m.user, { user: m.user, display_name: m.display_name, protocol: m.protocol });
      room.names.set(m.user, m.display_name);
      room.awaiting.delete(m.user);
      if (!room.peers.includes(m.user) && !room.name) room.peers.push(m.user);
      settleWaiters(room);
      if (state.tabs.includes(room)) addSystem(room, `${m.display_name} joined the conversation.`);
      break;
    case 'left': {
      if (state.me && m.user === state.me.handle) {
        room.joined = false;
        room.ended = true;
        addSystem(room, 'You are no longer in this conversation.');
        break;
      }
      const name = displayNameIn(room, m.user);
      room.members.delete(m.user);
      stopTyping(room, m.user);
      const why = { idle: ' (idle)', dropped: ' (disconnected)', removed: ' (removed)' }[m.reason] || '';
      if (state.tabs.includes(room)) addSystem(room, `${name} left the conversation${why}.`);
      break;
    }
    case 'typing':
      if (m.active === false) stopTyping(room, m.from);
      else startTyping(room, m.from);
      break;
    case 'nudge':
      addSystem(room, `${displayNameIn(room, m.from)} sent you a nudge!`, 'nudge');
      stopTyping(room, m.from);
      noticeActivity(room);
      if (state.active === room) shake();
      else room.shakePending = true;
      break;
    case 'notice':
      addSystem(room, `${displayNameIn(room, m.from)} ${m.text}.`);
      noticeActivity(room);
      break;
  }
  if (state.active === room) {
    renderMessages();
    if (m.type === 'joined' || m.type === 'left') renderHeader();
  }
  renderTabs();
}

// A message or a nudge arrived: the conversation gets a tab, and an unread
// mark unless it is on screen.
function noticeActivity(room) {
  const visible = state.active === room && document.visibilityState === 'visible';
  if (!visible) room.unread += 1;
  if (!state.tabs.includes(room)) openTab(room, !state.active);
  updateTitle();
}

function startTyping(room, user) {
  clearTimeout(room.typing.get(user));
  room.typing.set(user, setTimeout(() => stopTyping(room, user), TYPING_SHOW_MS));
  if (state.active === room) renderTyping();
}

function stopTyping(room, user) {
  if (!room.typing.has(user)) return;
  clearTimeout(room.typing.get(user));
  room.typing.delete(user);
  if (state.active === room) renderTyping();
}

// ------------------------------------------------------------------ rooms

function newRoom(id, { name = null, peers = [] } = {}) {
  const room = {
    id,                       // null while chat_open is in flight
    name,                     // named rooms only
    peers: [...peers],        // whom a 1:1 conversation is with
    names: new Map(),         // handle -> display name seen in this room
    members: new Map(),       // handle -> {user, display_name, protocol}
    items: [],                // {kind: 'msg'|'system'|'gap'|'divider', ...} in display order
    seqs: new Set(),          // seqs shown, for deduplication
    pending: new Map(),       // client_id -> {cid, text, time, status, error}
    awaiting: new Set(),      // invited, not joined yet
    waiters: [],
    typing: new Map(),
    lastSeq: 0,
    epoch: '',
    joined: false,
    joining: false,
    ended: false,
    flushing: false,
    unread: 0,
    shakePending: false,
    lastTypingSent: 0,
    earliestKnown: false,
    invited: false,           // joining because someone invited us
  };
  if (id) state.rooms.set(id, room);
  return room;
}

function roomPeers(room) {
  if (room.name) return [];
  const others = [...room.members.keys()].filter((u) => !state.me || u !== state.me.handle);
  return [...new Set([...room.peers, ...others])];
}

function displayNameIn(room, handle) {
  if (state.me && handle === state.me.handle) return state.me.display_name;
  const p = state.presence.get(handle);
  return (p && p.display_name) || room.names.get(handle) || (room.members.get(handle) || {}).display_name || handle;
}

function contactName(handle) {
  const p = state.presence.get(handle);
  const c = state.contacts.get(handle);
  return (p && p.display_name) || (c && c.display_name) || handle;
}

function roomTitle(room) {
  if (room.name) return '#' + room.name;
  const peers = roomPeers(room);
  if (!peers.length) return 'Conversation';
  return peers.map((p) => displayNameIn(room, p)).join(', ');
}

async function joinRoom(room) {
  if (room.joining || room.joined || !conn.ws || conn.phase !== 'online') return;
  room.joining = true;
  const fields = room.name ? { name: room.name } : { room: room.id };
  const resuming = room.lastSeq > 0 && !room.restored;
  if (resuming) {
    fields.since_seq = room.lastSeq;
    fields.epoch = room.epoch;
  }
  try {
    const r = await request('join', fields);
    room.restored = false;
    applyJoin(room, r, resuming);
  } catch (err) {
    room.joining = false;
    if (err.code === 'disconnected') return;
    if (room.restored) {
      // A conversation from before a reload that no longer takes us back.
      forgetRoom(room);
      return;
    }
    room.ended = true;
    if (state.tabs.includes(room) || room.pending.size) {
      addSystem(room, room.peers.length
        ? 'This conversation ended while you were away. Your next message starts a new one.'
        : 'Could not rejoin this room: ' + errorText(err));
    }
    flushPending(room);
  }
  saveRooms();
  if (state.active === room) renderConversation();
  renderTabs();
}

function applyJoin(room, r, resuming) {
  if (room.id !== r.room) {
    if (room.id) state.rooms.delete(room.id);
    room.id = r.room;
    state.rooms.set(room.id, room);
  }
  if (r.name) room.name = r.name;
  room.joined = true;
  room.joining = false;
  room.ended = false;
  room.members.clear();
  for (const m of r.members || []) {
    room.members.set(m.user, m);
    room.names.set(m.user, m.display_name);
  }
  if (resuming && r.reset === 'epoch_changed') {
    // Not the history our seqs counted in: start over.
    archiveMessages(room);
    addSystem(room, 'The conversation history was reset on the server.');
    room.lastSeq = 0;
  } else if (resuming && r.reset === 'history_truncated') {
    room.items.push({ kind: 'gap', time: Date.now() });
  }
  // What others said before an invitation was answered, or while the page
  // was away, is news like a live message; a room joined by hand shows its
  // history as the context it is.
  const news = resuming || room.invited;
  room.invited = false;
  const messages = r.messages || [];
  for (const m of messages) {
    if (addMessage(room, m) && news && !(state.me && m.from === state.me.handle)) noticeActivity(room);
  }
  room.epoch = r.epoch || '';
  room.lastSeq = Math.max(room.lastSeq, r.last_seq || 0);
  if (!resuming && messages.length && messages[0].seq <= 1) room.earliestKnown = true;
  settleWaiters(room);
  flushPending(room);
}

// The room's own seqs restart: what is on screen stays, outside deduplication.
function archiveMessages(room) {
  for (const it of room.items) if (it.kind === 'msg') it.archived = true;
  room.seqs.clear();
  room.lastSeq = 0;
  room.epoch = '';
  room.earliestKnown = false;
}

// Adds a message in seq order; false when this seq is already shown.
function addMessage(room, m) {
  if (typeof m.seq !== 'number' || room.seqs.has(m.seq)) return false;
  room.seqs.add(m.seq);
  room.lastSeq = Math.max(room.lastSeq, m.seq);
  if (m.from_name) room.names.set(m.from, m.from_name);
  const item = { kind: 'msg', seq: m.seq, from: m.from, from_name: m.from_name, time: m.time || Date.now(),
    text: m.text || '', format: m.format || null };
  let at = room.items.length;
  while (at > 0) {
    const prev = room.items[at - 1];
    if (prev.kind === 'msg' && !prev.archived && prev.seq > m.seq) at -= 1;
    else break;
  }
  room.items.splice(at, 0, item);
  return true;
}

function addSystem(room, text, kind = 'system') {
  room.items.push({ kind, text, time: Date.now() });
  if (state.active === room) renderMessages();
}

function forgetRoom(room) {
  if (room.id) state.rooms.delete(room.id);
  closeTab(room);
  saveRooms();
}

function settleWaiters(room) {
  if (room.awaiting.size) return;
  const waiters = room.waiters.splice(0);
  for (const w of waiters) w();
}

// Resolves once everyone invited has joined, or after `ms`: MSN clients
// show only what arrives after they join, so the first message waits.
function peersJoined(room, ms) {
  if (!room.awaiting.size) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      room.waiters = room.waiters.filter((w) => w !== done);
      resolve();
    }, ms);
    const done = () => { clearTimeout(timer); resolve(); };
    room.waiters.push(done);
  });
}

// Opens a conversation with a contact: the one already open, or a new room.
async function chatWith(handle) {
  const withHandle = (r) => !r.name && r.peers.length === 1 && r.peers[0] === handle;
  const room = state.tabs.find(withHandle) || [...state.rooms.values()].filter((r) => withHandle(r) && !r.ended).pop();
  if (room) {
    openTab(room, true);
    refreshHistory(room);
    $('compose-text').focus();
    return;
  }
  const fresh = newRoom(null, { peers: [handle] });
  openTab(fresh, true);
  $('compose-text').focus();
  await openRoom(fresh);
}

// chat_open for a room without an id yet (new, or a 1:1 conversation
// whose room ended): the room, then the invitations.
async function openRoom(room) {
  if (room.joining || conn.phase !== 'online') return false;
  room.joining = true;
  try {
    const r = await request('chat_open', { with: room.peers });
    // Set before the join result is applied: the first message waits for them.
    room.awaiting = new Set(r.invited || []);
    if (room.id) {
      // The old room ended: its messages stay on screen above the new ones.
      archiveMessages(room);
      state.rooms.delete(room.id);
      room.id = null;
      room.items.push({ kind: 'divider', time: Date.now() });
    }
    applyJoin(room, r, false);
    room.earliestKnown = true;
    for (const n of r.not_invited || []) {
      const name = contactName(n.handle);
      addSystem(room, n.code === 'offline'
        ? `${name} is offline. Messages cannot be delivered until they are online.`
        : `${name} could not be invited: ${errorText(n)}`);
    }
    settleWaiters(room);
    saveRooms();
    return true;
  } catch (err) {
    room.joining = false;
    if (err.code !== 'disconnected') addSystem(room, 'Could not start the conversation: ' + errorText(err));
    return false;
  } finally {
    if (state.active === room) renderConversation();
    renderTabs();
  }
}

// Makes sure the other side of a 1:1 conversation is there to read what
// comes next: a new room if ours ended, the contact invited back if they
// left (as MSN Messenger calls the contact again), and their join awaited.
async function ensurePeer(room) {
  if (room.name || !room.peers.length) return true;
  if (room.ended || !room.id) {
    if (!(await openRoom(room))) return false;
  }
  const peer = room.peers[0];
  if (!room.members.has(peer) && !room.awaiting.has(peer)) {
    try {
      await request('invite', { room: room.id, handle: peer });
      room.awaiting.add(peer);
    } catch (err) {
      if (err.code === 'disconnected') return false;
      if (err.code !== 'already_on_list') throw err;
    }
  }
  await peersJoined(room, PEER_JOIN_WAIT_MS);
  return true;
}

async function refreshHistory(room) {
  if (!room.joined || !room.id) return;
  try {
    const r = await request('history', { room: room.id, limit: 100 });
    let added = false;
    for (const m of r.messages || []) added = addMessage(room, m) || added;
    if ((r.messages || []).length && r.messages[0].seq <= 1) room.earliestKnown = true;
    if (added && state.active === room) renderMessages();
  } catch { /* the messages on screen stay */ }
}

async function loadEarlier(room) {
  const first = room.items.find((it) => it.kind === 'msg' && !it.archived);
  if (!first || !room.joined) return;
  try {
    const r = await request('history', { room: room.id, before_seq: first.seq, limit: 50 });
    const messages = r.messages || [];
    for (const m of messages) addMessage(room, m);
    if (!messages.length || messages[0].seq <= 1) room.earliestKnown = true;
  } catch (err) {
    toast('Could not load earlier messages: ' + errorText(err), 'error');
  }
  if (state.active === room) renderMessages({ keepScroll: true });
}

async function leaveRoom(room) {
  if (room.joined) {
    try { await request('leave', { room: room.id }); } catch { /* leaving anyway */ }
  }
  for (const t of room.typing.values()) clearTimeout(t);
  forgetRoom(room);
  renderAll();
}

// ------------------------------------------------------------------ sending

function newClientId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return 'c' + [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function sendText(room, text) {
  const cid = newClientId();
  room.pending.set(cid, { cid, text, time: Date.now(), status: 'queued', error: '' });
  if (room.lastTypingSent) {
    room.lastTypingSent = 0;
  }
  renderMessages({ toBottom: true });
  flushPending(room);
}

// Sends what is pending, oldest first, one at a time so the order holds.
// A message interrupted by a dropped connection keeps its client_id and
// goes again after the room is joined again: the room stores it once.
async function flushPending(room) {
  if (room.flushing) return;
  room.flushing = true;
  try {
    for (;;) {
      if (conn.phase !== 'online') return;
      const next = [...room.pending.values()].find((p) => p.status === 'queued');
      if (!next) return;
      let ready;
      try {
        ready = await ensurePeer(room);
      } catch (err) {
        for (const p of room.pending.values()) {
          if (p.status === 'queued') Object.assign(p, { status: 'failed', error: errorText(err) });
        }
        renderIfActive(room);
        return;
      }
      if (!ready || !room.joined) return;
      next.status = 'sending';
      renderIfActive(room);
      try {
        const r = await request('send', { room: room.id, text: next.text, client_id: next.cid });
        if (room.pending.delete(next.cid) && typeof r.seq === 'number') {
          addMessage(room, { seq: r.seq, from: state.me.handle, from_name: state.me.display_name, time: next.time,
            text: next.text });
        }
      } catch (err) {
        if (err.code === 'disconnected') {
          next.status = 'queued';
          return;
        }
        if (err.code === 'not_member') {
          next.status = 'queued';
          room.joined = false;
          room.ended = true;
          continue;
        }
        Object.assign(next, { status: 'failed', error: errorText(err) });
      }
      renderIfActive(room);
    }
  } finally {
    room.flushing = false;
    renderIfActive(room);
  }
}

function renderIfActive(room) {
  if (state.active === room) renderMessages();
}

function retryMessage(room, cid) {
  const p = room.pending.get(cid);
  if (!p) return;
  Object.assign(p, { status: 'queued', error: '' });
  renderMessages();
  flushPending(room);
}

async function sendNudge(room) {
  const button = $('nudge');
  button.disabled = true;
  setTimeout(() => { button.disabled = false; }, NUDGE_COOLDOWN_MS);
  try {
    if (!(await ensurePeer(room)) || !room.joined) throw { code: 'offline_now', reason: 'you are not connected.' };
    await request('nudge', { room: room.id });
    addSystem(room, 'You sent a nudge.', 'nudge');
    shake();
  } catch (err) {
    toast('The nudge was not sent: ' + errorText(err), 'error');
  }
}

function typed(room) {
  if (!room.joined) return;
  const now = Date.now();
  if (now - room.lastTypingSent < TYPING_SEND_EVERY_MS) return;
  room.lastTypingSent = now;
  notify('typing', { room: room.id });
}

function stoppedTyping(room) {
  if (!room.joined || !room.lastTypingSent) return;
  room.lastTypingSent = 0;
  notify('typing', { room: room.id, active: false });
}

// ------------------------------------------------------------------ profile and contacts

async function setStatus(status) {
  const before = state.me.status;
  state.me.status = status;
  renderMe();
  saveSession({ ...loadSession(), status });
  try {
    await request('presence', { status });
  } catch (err) {
    if (err.code !== 'disconnected') {
      state.me.status = before;
      renderMe();
      toast('Could not change your status: ' + errorText(err), 'error');
    }
  }
}

async function setProfile(field, value) {
  if (!state.me || state.me[field] === value) return;
  const before = state.me[field];
  state.me[field] = value;
  if (field === 'personal_message') sessionStorage.setItem(PSM_KEY, value);
  renderMe();
  try {
    await request('profile', { [field]: value });
    if (field === 'display_name' && !value) state.me.display_name = state.me.handle;
    renderMe();
  } catch (err) {
    state.me[field] = before;
    renderMe();
    toast('Could not save: ' + errorText(err), 'error');
  }
}

async function addContact(handle, name) {
  const fields = { handle };
  if (name) fields.display_name = name;
  const r = await request('contact_add', fields);
  let entry = state.contacts.get(r.handle);
  if (!entry) {
    entry = { handle: r.handle, display_name: r.display_name, lists: [], groups: [], contact_id: r.contact_id || '' };
    state.contacts.set(r.handle, entry);
  }
  for (const l of ['forward', 'allow']) if (!entry.lists.includes(l)) entry.lists.push(l);
  entry.lists = entry.lists.filter((l) => l !== 'block');
  entry.display_name = r.display_name;
  if (r.contact_id) entry.contact_id = r.contact_id;
  if (!state.presence.has(r.handle)) state.presence.set(r.handle, { status: 'offline', display_name: r.display_name });
  renderContacts();
  return r;
}

async function contactAction(action, handle) {
  try {
    await request(action, { handle });
    const entry = state.contacts.get(handle);
    if (entry) {
      const drop = { contact_remove: ['forward'], block: ['allow'], unblock: ['block'] }[action];
      const add = { block: ['block'], unblock: ['allow'] }[action] || [];
      entry.lists = entry.lists.filter((l) => !drop.includes(l)).concat(add.filter((l) => !entry.lists.includes(l)));
      if (!entry.lists.length) state.contacts.delete(handle);
    }
    const name = contactName(handle);
    toast({ contact_remove: `${name} was removed.`, block: `${name} is blocked.`, unblock: `${name} is unblocked.` }[action]);
  } catch (err) {
    toast(errorText(err), 'error');
  }
  renderContacts();
}

// ------------------------------------------------------------------ tabs and views

function openTab(room, focus) {
  if (!state.tabs.includes(room)) state.tabs.push(room);
  if (focus || !state.active) activate(room);
  else renderTabs();
  saveRooms();
}

function closeTab(room) {
  const i = state.tabs.indexOf(room);
  if (i < 0) return;
  state.tabs.splice(i, 1);
  if (state.active === room) state.active = state.tabs[Math.min(i, state.tabs.length - 1)] || null;
  if (room.ended && !room.pending.size && room.id) state.rooms.delete(room.id);
  saveRooms();
  renderAll();
}

function activate(room) {
  state.active = room;
  room.unread = 0;
  $('app').dataset.pane = 'chat';
  updateTitle();
  renderAll();
  if (room.shakePending) {
    room.shakePending = false;
    shake();
  }
}

function shake() {
  const el = $('conversation');
  el.classList.remove('shake');
  void el.offsetWidth;  // restart the animation
  el.classList.add('shake');
}

function updateTitle() {
  const unread = state.tabs.reduce((n, r) => n + r.unread, 0);
  document.title = unread ? `(${unread}) Switchyard` : 'Switchyard';
}

function showLogin(error) {
  $('app').dataset.view = 'login';
  $('main-view').hidden = true;
  $('login-view').hidden = false;
  const err = $('login-error');
  err.textContent = error || '';
  err.hidden = !error;
  $('login-submit').disabled = false;
  $('login-submit').textContent = 'Sign in';
  $('login-password').value = '';
  const saved = loadSession();
  if (saved && saved.handle) $('login-handle').value = saved.handle;
  ($('login-handle').value ? $('login-password') : $('login-handle')).focus();
}

function showMain() {
  $('app').dataset.view = 'main';
  $('login-view').hidden = true;
  $('main-view').hidden = false;
}

function resetState() {
  clearTimeout(conn.retryTimer);
  clearInterval(conn.countdown);
  clearInterval(conn.pingTimer);
  for (const room of state.rooms.values()) for (const t of room.typing.values()) clearTimeout(t);
  Object.assign(state, { me: null, groups: [], tabs: [], active: null, filter: '' });
  state.contacts.clear();
  state.presence.clear();
  state.rooms.clear();
  conn.loggedIn = false;
  conn.attempt = 0;
  $('contact-filter').value = '';
  updateTitle();
}

async function signOut() {
  setPhase('stopped');
  try { await request('logout'); } catch { /* closing anyway */ }
  if (conn.ws) conn.ws.close();
  conn.ws = null;
  clearSession();
  resetState();
  showLogin();
}

// ------------------------------------------------------------------ rendering

function renderAll() {
  if (!state.me) return;
  renderMe();
  renderConnection();
  renderContacts();
  renderTabs();
  renderConversation();
}

function renderMe() {
  const me = state.me;
  if (!me) return;
  const av = $('me-avatar');
  av.className = `avatar large ${hue(me.handle)}`;
  av.textContent = initials(me.display_name);
  if (document.activeElement !== $('me-name')) $('me-name').value = me.display_name;
  if (document.activeElement !== $('me-psm')) $('me-psm').value = me.personal_message || '';
  $('me-status').value = me.status;
  // Offline while the connection is down, whatever status is chosen.
  $('me-dot').className = `dot ${conn.phase === 'online' ? dotClass(me.status) : 'offline'}`;
  $('me-name').title = me.handle;
}

function renderConnection() {
  const box = $('connection');
  const text = $('connection-text');
  if (conn.phase === 'connecting' && conn.loggedIn) {
    box.hidden = false;
    text.textContent = 'Reconnecting…';
  } else if (conn.phase === 'waiting') {
    box.hidden = false;
    const s = Math.max(1, Math.ceil((conn.retryAt - Date.now()) / 1000));
    text.textContent = `Connection lost. Reconnecting in ${s} s…`;
  } else {
    box.hidden = true;
  }
}

function contactMatches(handle) {
  const f = state.filter.trim().toLowerCase();
  if (!f) return true;
  const p = state.presence.get(handle) || {};
  return [handle, contactName(handle), p.personal_message || ''].some((s) => String(s).toLowerCase().includes(f));
}

function presenceOf(handle) {
  return state.presence.get(handle) || { status: 'offline' };
}

function byPresenceThenName(a, b) {
  const ra = STATUS_RANK[presenceOf(a.handle).status] ?? 5;
  const rb = STATUS_RANK[presenceOf(b.handle).status] ?? 5;
  return (ra === 9) - (rb === 9) || contactName(a.handle).localeCompare(contactName(b.handle));
}

function renderContacts() {
  const list = $('contact-list');
  const scroll = list.scrollTop;
  const friends = [...state.contacts.values()].filter((c) => c.lists.includes('forward') && contactMatches(c.handle));
  const requests = [...state.contacts.values()].filter((c) => !c.lists.includes('forward') &&
    (c.lists.includes('reverse') || c.lists.includes('pending')) && !c.lists.includes('block') && contactMatches(c.handle));
  const sections = [];
  if (requests.length) {
    sections.push(group('requests', 'Added you', requests.map(requestRow), `${requests.length}`));
  }
  const online = (c) => presenceOf(c.handle).status !== 'offline';
  if (state.groups.length) {
    for (const g of state.groups) {
      const members = friends.filter((c) => c.groups.includes(g.id)).sort(byPresenceThenName);
      sections.push(group('g:' + g.id, g.name, members.map(contactRow), `${members.filter(online).length}/${members.length}`));
    }
    const rest = friends.filter((c) => !c.groups.some((id) => state.groups.find((g) => g.id === id))).sort(byPresenceThenName);
    if (rest.length) sections.push(group('other', 'Other contacts', rest.map(contactRow), `${rest.filter(online).length}/${rest.length}`));
  } else {
    const on = friends.filter(online).sort(byPresenceThenName);
    const off = friends.filter((c) => !online(c)).sort(byPresenceThenName);
    if (on.length) sections.push(group('online', 'Online', on.map(contactRow), `${on.length}`));
    if (off.length) sections.push(group('offline', 'Offline', off.map(contactRow), `${off.length}`));
  }
  if (!friends.length && !requests.length) {
    sections.push(h('p', { class: 'empty-list' }, state.filter
      ? 'No contact matches your search.'
      : 'No contacts yet. Add someone with the + button.'));
  }
  const rooms = [...state.rooms.values()].filter((r) => r.name);
  if (rooms.length) sections.push(group('rooms', 'Rooms', rooms.map(roomRow), `${rooms.length}`));
  list.replaceChildren(...sections);
  list.scrollTop = scroll;
}

function group(key, title, rows, count) {
  const collapsed = state.collapsed.has(key);
  const header = h('button', {
    class: 'group-header', type: 'button', 'aria-expanded': String(!collapsed),
    onclick: () => {
      if (state.collapsed.has(key)) state.collapsed.delete(key);
      else state.collapsed.add(key);
      renderContacts();
    },
  }, icon('chevron'), h('span', {}, title), h('span', { class: 'group-count' }, `(${count})`));
  return h('section', { class: 'group' + (collapsed ? ' collapsed' : ''), dataset: { group: key } },
    header, h('div', { class: 'group-body', role: 'list' }, rows));
}

function contactRow(c) {
  const p = presenceOf(c.handle);
  const name = contactName(c.handle);
  const blocked = c.lists.includes('block');
  const sub = p.personal_message
    ? h('div', { class: 'contact-sub psm' }, p.personal_message)
    : h('div', { class: 'contact-sub' }, p.current_media ? '♪ ' + p.current_media : STATUS_LABELS[p.status] || p.status);
  const unread = [...state.rooms.values()]
    .filter((r) => !r.name && r.peers.length === 1 && r.peers[0] === c.handle)
    .reduce((n, r) => n + r.unread, 0);
  const active = state.active && !state.active.name && roomPeers(state.active).length === 1 && roomPeers(state.active)[0] === c.handle;
  return h('div', {
    class: `contact ${p.status === 'offline' ? 'offline' : ''} ${active ? 'active' : ''}`,
    role: 'listitem', tabindex: '0', title: c.handle,
    dataset: { handle: c.handle, status: p.status },
    onclick: (ev) => { if (!ev.target.closest('.more')) chatWith(c.handle); },
    onkeydown: (ev) => { if (ev.key === 'Enter') chatWith(c.handle); },
  },
  avatar(name, c.handle, p.status),
  h('div', { class: 'contact-text' },
    h('div', { class: 'contact-name' }, name, ' ', blocked ? h('span', { class: 'tag' }, 'blocked') : null),
    sub),
  unread ? h('span', { class: 'badge', 'aria-label': `${unread} unread` }, String(unread)) : null,
  moreButton(c));
}

function moreButton(c) {
  const button = h('button', {
    class: 'icon-button more', type: 'button', title: 'More', 'aria-label': `More for ${contactName(c.handle)}`,
    'aria-haspopup': 'menu',
    onclick: (ev) => {
      ev.stopPropagation();
      const blocked = c.lists.includes('block');
      showMenu(button, [
        ['Send a message', () => chatWith(c.handle)],
        [blocked ? 'Unblock' : 'Block', () => contactAction(blocked ? 'unblock' : 'block', c.handle)],
        ['Remove contact', () => contactAction('contact_remove', c.handle), 'danger'],
      ]);
    },
  }, icon('more'));
  return button;
}

function requestRow(c) {
  const name = contactName(c.handle);
  return h('div', { class: 'contact', role: 'listitem', dataset: { handle: c.handle } },
    avatar(name, c.handle, null),
    h('div', { class: 'contact-text' },
      h('div', { class: 'contact-name' }, name),
      h('div', { class: 'contact-sub' }, c.handle),
      h('div', { class: 'request-actions' },
        h('button', {
          class: 'button small primary', type: 'button',
          onclick: () => addContact(c.handle).then(() => toast(`${name} is now a contact.`), (e) => toast(errorText(e), 'error')),
        }, 'Add'),
        h('button', { class: 'button small', type: 'button', onclick: () => contactAction('block', c.handle) }, 'Block'))));
}

function roomRow(room) {
  return h('div', {
    class: `contact ${state.active === room ? 'active' : ''}`, role: 'listitem', tabindex: '0',
    onclick: () => openTab(room, true),
  },
  avatar(room.name, room.name, null, 'room'),
  h('div', { class: 'contact-text' },
    h('div', { class: 'contact-name' }, '#' + room.name),
    h('div', { class: 'contact-sub' }, room.joined ? `${room.members.size} here` : 'not joined')),
  room.unread ? h('span', { class: 'badge' }, String(room.unread)) : null);
}

function showMenu(anchor, entries) {
  const menu = $('menu');
  menu.replaceChildren(...entries.map(([label, action, kind]) => h('button', {
    type: 'button', role: 'menuitem', class: kind || '',
    onclick: () => { hideMenu(); action(); },
  }, label)));
  menu.hidden = false;
  const r = anchor.getBoundingClientRect();
  const top = Math.min(r.bottom + 4, window.innerHeight - menu.offsetHeight - 8);
  const left = Math.min(r.left, window.innerWidth - menu.offsetWidth - 8);
  menu.style.top = `${top}px`;
  menu.style.left = `${left}px`;
  menu.querySelector('button').focus();
}

function hideMenu() { $('menu').hidden = true; }

function renderTabs() {
  const tabs = $('tabs');
  tabs.replaceChildren(...state.tabs.map((room) => {
    const selected = state.active === room;
    const peers = roomPeers(room);
    const status = room.name ? null : (peers.length === 1 ? presenceOf(peers[0]).status : null);
    return h('div', {
      class: `tab ${room.unread ? 'unread' : ''}`, role: 'tab', tabindex: selected ? '0' : '-1',
      'aria-selected': String(selected), dataset: { room: room.id || '' },
      onclick: (ev) => { if (!ev.target.closest('.tab-close')) activate(room); },
    },
    status ? h('span', { class: `dot ${dotClass(status)}`, 'aria-hidden': 'true' }) : null,
    h('span', { class: 'tab-label' }, roomTitle(room)),
    room.unread ? h('span', { class: 'badge' }, String(room.unread)) : null,
    h('button', {
      class: 'icon-button tab-close', type: 'button', title: 'Close', 'aria-label': `Close ${roomTitle(room)}`,
      onclick: () => closeTab(room),
    }, icon('close')));
  }));
}

function renderConversation() {
  const room = state.active;
  $('conversation').hidden = !room;
  $('empty').hidden = !!room;
  if (!room) {
    $('app').dataset.pane = 'list';
    return;
  }
  renderHeader();
  renderMessages({ toBottom: room !== renderMessages.lastRoom });
  renderTyping();
  const usable = !room.ended || room.peers.length > 0;
  $('compose-text').disabled = !usable;
  $('send').disabled = !usable;
  $('nudge').hidden = !!room.name;
  $('conv-invite').hidden = !room.joined;
}

function renderHeader() {
  const room = state.active;
  if (!room) return;
  const peers = roomPeers(room);
  const title = roomTitle(room);
  $('conv-title').textContent = title;
  $('conv-avatar').replaceChildren(room.name
    ? avatar(room.name, room.name, null, 'room')
    : avatar(title, peers[0] || title, peers.length === 1 ? presenceOf(peers[0]).status : null));
  let subtitle;
  if (room.name) {
    subtitle = room.joined ? `${room.members.size} ${room.members.size === 1 ? 'person' : 'people'} here` : 'Not joined';
  } else if (peers.length === 1) {
    const p = presenceOf(peers[0]);
    subtitle = [STATUS_LABELS[p.status] || p.status, p.personal_message].filter(Boolean).join(' · ');
    if (room.awaiting.has(peers[0])) subtitle = 'Waiting for them to join…';
  } else {
    subtitle = peers.join(', ');
  }
  if (!room.joined && conn.phase !== 'online') subtitle = 'Offline — messages will be sent when you are back';
  $('conv-subtitle').textContent = subtitle;
}

function renderTyping() {
  const room = state.active;
  const el = $('typing');
  if (!room || !room.typing.size) {
    el.textContent = '';
    return;
  }
  const names = [...room.typing.keys()].map((u) => displayNameIn(room, u));
  el.textContent = names.length === 1 ? `${names[0]} is typing` : `${names.join(', ')} are typing`;
}

function renderMessages({ toBottom = false, keepScroll = false } = {}) {
  const room = state.active;
  if (!room) return;
  const box = $('messages');
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const fromBottom = box.scrollHeight - box.scrollTop;
  renderMessages.lastRoom = room;
  const nodes = [];
  const firstMsg = room.items.find((it) => it.kind === 'msg' && !it.archived);
  if (room.joined && firstMsg && !room.earliestKnown && firstMsg.seq > 1) {
    nodes.push(h('button', { class: 'button small load-earlier', type: 'button', onclick: () => loadEarlier(room) },
      'Load earlier messages'));
  }
  let lastDay = '';
  let lastFrom = null;
  const dayOf = (t) => {
    const d = dayLabel(t);
    if (d !== lastDay) {
      lastDay = d;
      lastFrom = null;
      nodes.push(h('div', { class: 'day' }, d));
    }
  };
  for (const it of room.items) {
    dayOf(it.time);
    if (it.kind === 'msg') {
      nodes.push(messageNode(room, it, lastFrom === it.from));
      lastFrom = it.from;
    } else {
      lastFrom = null;
      if (it.kind === 'gap') nodes.push(h('div', { class: 'system gap' }, 'Some messages from while you were away are no longer available.'));
      else if (it.kind === 'divider') nodes.push(h('div', { class: 'system' }, 'New conversation'));
      else nodes.push(h('div', { class: `system ${it.kind === 'nudge' ? 'nudge' : ''}` }, it.text));
    }
  }
  for (const p of room.pending.values()) {
    dayOf(p.time);
    nodes.push(pendingNode(room, p, lastFrom === state.me.handle));
    lastFrom = state.me.handle;
  }
  box.replaceChildren(...nodes);
  if (keepScroll) box.scrollTop = box.scrollHeight - fromBottom;
  else if (toBottom || nearBottom) box.scrollTop = box.scrollHeight;
}

function messageNode(room, it, continued) {
  const mine = state.me && it.from === state.me.handle;
  const name = mine ? state.me.display_name : displayNameIn(room, it.from);
  const bubble = h('div', { class: 'bubble' }, richText(it.text));
  applyFormat(bubble, it.format);
  return h('div', { class: `msg ${mine ? 'mine' : ''} ${continued ? 'cont' : ''}`, dataset: { seq: String(it.seq), from: it.from } },
    avatar(name, it.from, null),
    h('div', { class: 'msg-body' },
      mine ? null : h('div', { class: 'msg-from' }, name),
      bubble,
      h('div', { class: 'msg-meta' }, h('time', { datetime: new Date(it.time).toISOString() }, timeFormat.format(it.time)))));
}

function pendingNode(room, p, continued) {
  const failed = p.status === 'failed';
  const meta = failed
    ? [`Not sent: ${p.error}`, ' ', h('button', { class: 'link-button', type: 'button', onclick: () => retryMessage(room, p.cid) }, 'Retry')]
    : [h('span', { class: 'spinner', 'aria-hidden': 'true' }), conn.phase === 'online' ? 'Sending…' : 'Waiting for the connection…'];
  return h('div', { class: `msg mine ${failed ? 'failed' : 'pending'} ${continued ? 'cont' : ''}`, dataset: { clientId: p.cid, status: p.status } },
    avatar(state.me.display_name, state.me.handle, null),
    h('div', { class: 'msg-body' }, h('div', { class: 'bubble' }, richText(p.text)), h('div', { class: 'msg-meta' }, meta)));
}

// MSN text formats, through the CSS object model (no style attributes).
function applyFormat(el, f) {
  if (!f) return;
  if (f.bold) el.style.fontWeight = '700';
  if (f.italic) el.style.fontStyle = 'italic';
  const deco = [f.underline && 'underline', f.strikethrough && 'line-through'].filter(Boolean).join(' ');
  if (deco) el.style.textDecoration = deco;
  if (typeof f.color === 'string' && /^#[0-9a-fA-F]{6}$/.test(f.color) && f.color !== '#000000') el.style.color = f.color;
  if (f.font && typeof f.font === 'string') el.style.fontFamily = `"${f.font.replace(/["\\]/g, '')}", var(--font)`;
  if (f.right_to_left) el.dir = 'rtl';
}

// ------------------------------------------------------------------ wiring

function wireDialog(dialog, form, errorEl, submit) {
  dialog.querySelector('[data-close]').addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    errorEl.hidden = true;
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await submit();
      dialog.close();
    } catch (err) {
      errorEl.textContent = errorText(err);
      errorEl.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}

function wire() {
  $('sign-out').append(icon('signout'));
  $('add-contact').append(icon('plus'));
  $('nudge').append(icon('nudge'));
  $('send').append(icon('send'));
  $('conv-invite').append(icon('invite'));
  $('conv-leave').append(icon('leave'));
  const back = h('button', { class: 'icon-button back', type: 'button', title: 'Back', 'aria-label': 'Back to contacts',
    onclick: () => { $('app').dataset.pane = 'list'; } }, icon('back'));
  $('conversation').querySelector('.conv-header').prepend(back);

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const handle = $('login-handle').value.trim();
    const password = $('login-password').value;
    if (!handle || !password) {
      showLogin('Enter your email address and password.');
      $('login-handle').value = handle;
      return;
    }
    $('login-error').hidden = true;
    $('login-submit').disabled = true;
    $('login-submit').textContent = 'Signing in…';
    conn.credentials = { handle, password, status: $('login-status').value };
    conn.loggedIn = false;
    setPhase('offline');
    connect();
  });

  $('sign-out').addEventListener('click', signOut);
  $('connection-retry').addEventListener('click', retryNow);
  $('me-status').addEventListener('change', (ev) => setStatus(ev.target.value));
  for (const [id, field] of [['me-name', 'display_name'], ['me-psm', 'personal_message']]) {
    const input = $(id);
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') input.blur();
      if (ev.key === 'Escape') {
        input.value = state.me[field] || '';
        input.blur();
      }
    });
    input.addEventListener('change', () => setProfile(field, input.value.trim()));
  }
  $('contact-filter').addEventListener('input', (ev) => {
    state.filter = ev.target.value;
    renderContacts();
  });

  const addDialog = $('add-contact-dialog');
  $('add-contact').addEventListener('click', () => {
    $('add-contact-form').reset();
    $('add-contact-error').hidden = true;
    addDialog.showModal();
  });
  wireDialog(addDialog, $('add-contact-form'), $('add-contact-error'), async () => {
    const handle = $('add-contact-handle').value.trim();
    if (!handle) throw { code: 'invalid_text' };
    const r = await addContact(handle, $('add-contact-name').value.trim());
    toast(`${r.display_name || r.handle} was added to your contacts.`);
  });

  const joinDialog = $('join-room-dialog');
  $('join-room').addEventListener('click', () => {
    $('join-room-form').reset();
    $('join-room-error').hidden = true;
    joinDialog.showModal();
  });
  wireDialog(joinDialog, $('join-room-form'), $('join-room-error'), async () => {
    const name = $('join-room-name').value.trim().toLowerCase();
    const known = [...state.rooms.values()].find((r) => r.name === name);
    if (known) {
      openTab(known, true);
      return;
    }
    const r = await request('join', { name });
    const room = state.rooms.get(r.room) || newRoom(r.room, { name });
    applyJoin(room, r, false);
    openTab(room, true);
    saveRooms();
  });

  const inviteDialog = $('invite-dialog');
  $('conv-invite').addEventListener('click', () => {
    const room = state.active;
    if (!room) return;
    const candidates = [...state.contacts.values()]
      .filter((c) => c.lists.includes('forward') && presenceOf(c.handle).status !== 'offline' && !room.members.has(c.handle));
    $('invite-handle').replaceChildren(...candidates.map((c) => h('option', { value: c.handle }, `${contactName(c.handle)} (${c.handle})`)));
    $('invite-error').textContent = candidates.length ? '' : 'None of your contacts who are online can be invited.';
    $('invite-error').hidden = !!candidates.length;
    inviteDialog.showModal();
  });
  wireDialog(inviteDialog, $('invite-form'), $('invite-error'), async () => {
    const room = state.active;
    const handle = $('invite-handle').value;
    if (!room || !handle) throw { code: 'not_allowed', reason: 'Pick someone to invite.' };
    await request('invite', { room: room.id, handle });
    if (!room.name && !room.peers.includes(handle)) room.peers.push(handle);
    addSystem(room, `You invited ${contactName(handle)}.`);
    renderAll();
  });

  $('conv-leave').addEventListener('click', () => { if (state.active) leaveRoom(state.active); });

  const text = $('compose-text');
  const submit = () => {
    const room = state.active;
    const value = text.value.trim();
    if (!room || !value) return;
    text.value = '';
    autosize();
    sendText(room, value);
  };
  const autosize = () => {
    text.style.height = 'auto';
    text.style.height = `${Math.min(text.scrollHeight + 2, 160)}px`;
  };
  $('composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
  });
  text.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    }
  });
  text.addEventListener('input', () => {
    autosize();
    if (!state.active) return;
    if (text.value.trim()) typed(state.active);
    else stoppedTyping(state.active);
  });
  $('nudge').addEventListener('click', () => { if (state.active) sendNudge(state.active); });

  document.addEventListener('click', (ev) => {
    if (!ev.target.closest('#menu') && !ev.target.closest('.more')) hideMenu();
  });
  document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') hideMenu(); });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.active) {
      state.active.unread = 0;
      updateTitle();
      renderTabs();
    }
  });
  window.addEventListener('online', retryNow);
}

function start() {
  wire();
  if (loadSession()) {
    // A session of this tab: back in with its token.
    showLogin();
    $('login-submit').disabled = true;
    $('login-submit').textContent = 'Signing in…';
    connect();
  } else {
    showLogin();
  }
}

start();
