// The browser page end to end: headless Chromium (Debian's chromium, driven
// by playwright-core) against the real gateway binary, with MSN Messenger
// users on real MSNP5 sockets on the other side of the conversations.
//
//   node page_test.mjs <switchyard binary> <artefacts directory>
//
// Everything listens on 127.0.0.1 with port 0. The page reaches the
// gateway through a TCP relay in this script, so the test can cut the
// network under the page (every connection dropped, new ones refused) and
// bring it back, without any hook in the product. Waits are on conditions
// (locators, lines on the MSNP sockets, log lines), each with a timeout.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const WAIT_MS = 15000;
const [binary, artefacts] = process.argv.slice(2);
if (!binary || !artefacts) {
  console.error('usage: node page_test.mjs <switchyard binary> <artefacts directory>');
  process.exit(2);
}
const chromiumPath = process.env.SWITCHYARD_CHROMIUM || '/usr/bin/chromium';

let step = 'start';
function log(text) {
  console.log(`[${(performance.now() / 1000).toFixed(1).padStart(6)} s] ${text}`);
}
function begin(name) {
  step = name;
  log(name);
}
function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

// Resolves when `poll` returns a truthy value, checking whenever `event`
// fires on `emitter`; rejects after `ms` with `what`.
function waitFor(emitter, event, poll, what, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const tryNow = () => {
      let v;
      try { v = poll(); } catch (err) { finish(); reject(err); return; }
      if (v) { finish(); resolve(v); }
    };
    const timer = setTimeout(() => { finish(); reject(new Error(`timed out after ${ms} ms waiting for ${what}`)); }, ms);
    const finish = () => { clearTimeout(timer); emitter.off(event, tryNow); };
    emitter.on(event, tryNow);
    tryNow();
  });
}

// ------------------------------------------------------------------ the gateway

class Gateway {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-browser-'));
    this.settings = path.join(this.dir, 'switchyard.toml');
    fs.writeFileSync(this.settings, [
      '[gateway]', 'threads = 2',
      '[listeners.msnp]', 'port = 0',
      '[listeners.ws]', 'port = 0', 'rooms = ["lobby"]',
      '[listeners.admin]', 'port = 0',
      '[accounts]', 'scrypt_n = 1024', '',
    ].join('\n'));
    fs.writeFileSync(path.join(this.dir, 'routes.toml'), '[default]\nbackend = "embedded"\n');
    this.output = '';
    this.ports = {};
    this.events = new EventEmitter();
    this.proc = null;
  }

  addUser(handle, password, name, md5) {
    const args = ['user', 'add', handle, '-c', this.settings, '--name', name];
    if (md5) args.push('--legacy-md5');
    const r = spawnSync(binary, args, { input: password + '\n', encoding: 'utf8', timeout: WAIT_MS });
    if (r.status !== 0) throw new Error(`switchyard user add ${handle} failed: ${r.stderr}${r.stdout}`);
  }

  async start() {
    this.proc = spawn(binary, ['run', '-c', this.settings], { stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (chunk) => {
      this.output += chunk.toString('utf8');
      this.events.emit('output');
    };
    this.proc.stdout.on('data', take);
    this.proc.stderr.on('data', take);
    this.proc.on('exit', (code, signal) => {
      this.exited = { code, signal };
      this.events.emit('output');
    });
    await waitFor(this.events, 'output', () => {
      if (this.exited) throw new Error(`the gateway exited early (${JSON.stringify(this.exited)}):\n${this.output}`);
      return /event=started/.test(this.output);
    }, 'the gateway to start');
    for (const line of this.output.split('\n')) {
      if (!line.includes('event=listening')) continue;
      const listener = /listener=(\w+)/.exec(line)[1];
      this.ports[listener] = Number(/ port=(\d+)/.exec(line)[1]);
    }
    check(this.ports.msnp && this.ports.ws, `the gateway named its ports: ${JSON.stringify(this.ports)}`);
  }

  // SIGTERM, then SIGKILL if it is not gone within the wait.
  async stop() {
    if (!this.proc || this.exited) return;
    this.proc.kill('SIGTERM');
    try {
      await waitFor(this.events, 'output', () => this.exited, 'the gateway to exit');
    } catch {
      this.kill();
    }
  }

  kill() {
    if (this.proc && !this.exited) this.proc.kill('SIGKILL');
  }

  cleanup() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ the network under the page

// A TCP relay between the browser and the gateway's WebSocket port. cut()
// destroys every relayed connection at once (the page sees its socket die,
// the gateway sees the client gone) and refuses new ones until restore().
class Relay {
  constructor(target) {
    this.target = target;
    this.pairs = new Set();
    this.refusing = false;
    this.refused = 0;
    this.emitter = new EventEmitter();
    this.server = net.createServer((client) => this.accept(client));
  }

  listen() {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => {
      this.port = this.server.address().port;
      resolve();
    }));
  }

  accept(client) {
    if (this.refusing) {
      this.refused += 1;
      client.destroy();
      this.emitter.emit('refused');
      return;
    }
    const upstream = net.connect(this.target, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  cut() {
    this.refusing = true;
    this.refused = 0;
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  restore() {
    this.refusing = false;
  }

  close() {
    this.server.close();
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
  }
}

// ------------------------------------------------------------------ an MSN Messenger user

const md5 = (text) => createHash('md5').update(text).digest('hex');

function mime(contentType, body, extra = '') {
  return `MIME-Version: 1.0\r\nContent-Type: ${contentType}\r\n${extra}\r\n${body}`;
}

// One MSNP connection (NS or SB). Lines and MSG payloads are kept in
// arrival order; expect() takes the first one not yet taken that matches,
// so asynchronous lines never get lost while waiting for another.
class Msnp {
  constructor(port, name) {
    this.name = name;
    this.items = [];
    this.buffer = Buffer.alloc(0);
    this.trid = 10;
    this.emitter = new EventEmitter();
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (chunk) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.emitter.emit('item');
    });
    this.socket.on('error', () => {});
  }

  parse() {
    for (;;) {
      const nl = this.buffer.indexOf('\r\n');
      if (nl < 0) return;
      const line = this.buffer.subarray(0, nl).toString('utf8');
      const words = line.split(' ');
      let payload = null;
      let used = nl + 2;
      if (words[0] === 'MSG') {
        const size = Number(words[words.length - 1]);
        if (this.buffer.length < used + size) return;
        payload = this.buffer.subarray(used, used + size).toString('utf8');
        used += size;
      }
      this.buffer = this.buffer.subarray(used);
      this.items.push({ line, words, payload, taken: false });
      this.emitter.emit('item');
    }
  }

  send(text) {
    this.socket.write(text);
  }

  expect(match, what, ms = WAIT_MS) {
    return waitFor(this.emitter, 'item', () => {
      const item = this.items.find((it) => !it.taken && match(it));
      if (item) {
        item.taken = true;
        return item;
      }
      if (this.closed) throw new Error(`${this.name}: connection closed while waiting for ${what}`);
      return null;
    }, `${this.name}: ${what}; lines so far:\n  ${this.items.map((i) => i.line).join('\n  ')}`, ms);
  }

  // Sends a command and returns its reply; an error with its trid throws.
  async command(text) {
    const words = text.split(' ');
    this.send(text + '\r\n');
    const reply = await this.expect((it) => it.words[1] === words[1] &&
      (it.words[0] === words[0] || /^\d{3}$/.test(it.words[0])), `the reply to ${text}`);
    if (/^\d{3}$/.test(reply.words[0])) throw new Error(`${this.name}: ${text} refused: ${reply.line}`);
    return reply;
  }

  // MSG with an acknowledgement mode; A waits for the ACK.
  async message(mode, payload) {
    const trid = String(++this.trid);
    this.send(`MSG ${trid} ${mode} ${Buffer.byteLength(payload)}\r\n${payload}`);
    if (mode === 'A') {
      const r = await this.expect((it) => it.words[1] === trid && ['ACK', 'NAK'].includes(it.words[0]), `ACK ${trid}`);
      if (r.words[0] !== 'ACK') throw new Error(`${this.name}: message ${trid} refused: ${r.line}`);
    }
  }

  say(text, format = '') {
    return this.message('A', mime('text/plain; charset=UTF-8', text, format ? `X-MMS-IM-Format: ${format}\r\n` : ''));
  }

  typing(handle) {
    return this.message('U', mime('text/x-msmsgscontrol', '\r\n', `TypingUser: ${handle}\r\n`));
  }

  nudge() {
    return this.message('N', mime('text/x-msnmsgr-datacast', 'ID: 1\r\n\r\n'));
  }

  // A message from `from` whose payload matches.
  received(from, test, what) {
    return this.expect((it) => it.words[0] === 'MSG' && it.words[1] === from && test(it.payload), what);
  }

  close() {
    this.socket.destroy();
  }
}

class MsnUser {
  constructor(gateway, handle, password) {
    this.gateway = gateway;
    this.handle = handle;
    this.password = password;
    this.switchboards = [];
  }

  async login(name, status) {
    const ns = new Msnp(this.gateway.ports.msnp, `${this.handle} NS`);
    this.ns = ns;
    await ns.command('VER 1 MSNP5 CVR0');
    const salt = (await ns.command(`USR 2 MD5 I ${this.handle}`)).words[4];
    const ok = await ns.command(`USR 3 MD5 S ${md5(salt + this.password)}`);
    check(ok.words[2] === 'OK', `${this.handle} logged in: ${ok.line}`);
    await ns.command(`REA 4 ${this.handle} ${encodeURIComponent(name)}`);
    await ns.command(`CHG 5 ${status}`);
  }

  async addBack(handle) {
    await this.ns.command(`ADD 6 FL ${handle} ${handle}`);
    await this.ns.command(`ADD 7 AL ${handle} ${handle}`);
  }

  // Answers the next ring (RNG) on the notification server, as MSN
  // Messenger does when someone opens a conversation with this user.
  async answer(what) {
    const rng = await this.ns.expect((it) => it.words[0] === 'RNG', `a ring (${what})`);
    const [, room, address, , cookie] = rng.words;
    const sb = new Msnp(Number(address.split(':').pop()), `${this.handle} SB ${room}`);
    sb.room = room;
    await sb.command(`ANS 1 ${this.handle} ${cookie} ${room}`);
    this.switchboards.push(sb);
    return sb;
  }

  close() {
    for (const sb of this.switchboards) sb.close();
    if (this.ns) this.ns.close();
  }
}

// Screenshots without the short notices the page shows after each action.
const noToasts = (page) => page.waitForFunction(() => !document.querySelector('#toasts .toast'));

const isText = (text) => (payload) => payload.includes('Content-Type: text/plain') && payload.endsWith('\r\n\r\n' + text);

// ------------------------------------------------------------------ the test

const gateway = new Gateway();
let browser = null;
let relay = null;
const msnUsers = [];
const pageErrors = [];

process.on('exit', () => gateway.kill());
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    gateway.kill();
    process.exit(1);
  });
}

async function main() {
  fs.mkdirSync(artefacts, { recursive: true });
  check(fs.existsSync(chromiumPath), `${chromiumPath} exists (tools/setup.sh installs Debian's chromium)`);

  begin('accounts and the gateway');
  gateway.addUser('alice@example.com', 'alice-secret', 'Alice', false);
  gateway.addUser('bob@example.com', 'bob-secret', 'Bob', true);
  gateway.addUser('dave@example.com', 'dave-secret', 'Dave', true);
  gateway.addUser('carol@example.com', 'carol-secret', 'Carol', false);
  gateway.addUser('erin@example.com', 'erin-secret', 'Erin', false);
  await gateway.start();
  relay = new Relay(gateway.ports.ws);
  await relay.listen();
  log(`gateway: msnp ${gateway.ports.msnp}, ws ${gateway.ports.ws}; the page through the relay on ${relay.port}`);

  begin('MSN Messenger users sign in and add Alice');
  const bob = new MsnUser(gateway, 'bob@example.com', 'bob-secret');
  const dave = new MsnUser(gateway, 'dave@example.com', 'dave-secret');
  msnUsers.push(bob, dave);
  await bob.login('Bob Builder', 'NLN');
  await bob.addBack('alice@example.com');
  await dave.login('Dave on MSN 4.7', 'BSY');
  await dave.addBack('alice@example.com');

  begin('the page loads from the gateway');
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, colorScheme: 'light' });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (err) => pageErrors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // A refused connection while the network is cut is expected; nothing else.
    if (msg.type() === 'error' && !/WebSocket connection to .* failed/.test(msg.text())) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });
  const base = `http://127.0.0.1:${relay.port}`;
  const response = await page.goto(base + '/');
  check(response.status() === 200, `GET / answered ${response.status()}`);
  check(/script-src 'self'/.test(response.headers()['content-security-policy'] || ''), 'the page has its Content-Security-Policy');

  begin('log in through the form');
  const form = page.locator('#login-form');
  await form.getByLabel('Email address').fill('alice@example.com');
  await form.getByLabel('Password').fill('alice-secret');
  await form.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#app[data-view="main"][data-connection="online"]').waitFor();
  const session = await page.evaluate(() => JSON.parse(sessionStorage.getItem('switchyard.session') || 'null'));
  check(session && typeof session.token === 'string' && session.token.length > 0, 'the session token is in sessionStorage');
  check(!JSON.stringify(session).includes('alice-secret'), 'the password is not kept');

  begin('contacts who added Alice are offered; she adds them back and sees their presence');
  const list = page.locator('#contact-list');
  await list.locator('[data-group="requests"] .contact[data-handle="bob@example.com"]').getByRole('button', { name: 'Add' }).click();
  const bobRow = list.locator('.contact[data-handle="bob@example.com"][data-status="online"]');
  await bobRow.filter({ hasText: 'Bob Builder' }).waitFor();
  await list.locator('[data-group="requests"] .contact[data-handle="dave@example.com"]').getByRole('button', { name: 'Add' }).click();
  await list.locator('.contact[data-handle="dave@example.com"][data-status="busy"]').filter({ hasText: 'Busy' }).waitFor();

  begin('add contacts with the dialog');
  const addDialog = page.locator('#add-contact-dialog');
  for (const [handle, name] of [['carol@example.com', 'Carol'], ['erin@example.com', 'Erin']]) {
    await page.getByRole('button', { name: 'Add a contact' }).click();
    await addDialog.getByLabel('Their email address').fill(handle);
    await addDialog.getByLabel('Nickname').fill(name);
    await addDialog.getByRole('button', { name: 'Add contact' }).click();
    await list.locator(`[data-group="offline"] .contact[data-handle="${handle}"]`).filter({ hasText: name }).waitFor();
  }

  begin('a second web user signs in, adds Alice back and sets a personal message');
  const carolContext = await browser.newContext({ viewport: { width: 1024, height: 700 } });
  const carol = await carolContext.newPage();
  carol.setDefaultTimeout(WAIT_MS);
  carol.on('pageerror', (err) => pageErrors.push(`carol's page error: ${err.message}`));
  await carol.goto(base + '/');
  const carolForm = carol.locator('#login-form');
  await carolForm.getByLabel('Email address').fill('carol@example.com');
  await carolForm.getByLabel('Password').fill('carol-secret');
  await carolForm.getByRole('button', { name: 'Sign in' }).click();
  await carol.locator('#app[data-connection="online"]').waitFor();
  await carol.locator('[data-group="requests"] .contact[data-handle="alice@example.com"]').getByRole('button', { name: 'Add' }).click();
  await carol.getByLabel('Your display name').fill('Carol of Hearts');
  await carol.getByLabel('Your display name').press('Enter');
  await carol.getByLabel('Your personal message').fill('Painting the roses red');
  await carol.getByLabel('Your personal message').press('Enter');
  await list.locator('.contact[data-handle="carol@example.com"][data-status="online"]')
    .filter({ hasText: 'Carol of Hearts' }).filter({ hasText: 'Painting the roses red' }).waitFor();

  begin('presence and name changes of an MSN user show up');
  await bob.ns.command('CHG 8 AWY');
  await list.locator('.contact[data-handle="bob@example.com"][data-status="away"]').waitFor();
  await bob.ns.command('CHG 9 NLN');
  await bobRow.waitFor();

  begin('Alice edits her own name, personal message and status');
  await page.getByLabel('Your display name').fill('Alice Liddell');
  await page.getByLabel('Your display name').press('Enter');
  await bob.ns.expect((it) => it.words[0] === 'NLN' && it.words[2] === 'alice@example.com' && it.words[3] === 'Alice%20Liddell',
    'NLN with Alice\'s new name');
  await page.getByLabel('Your personal message').fill('Down the rabbit hole');
  await page.getByLabel('Your personal message').press('Enter');
  await page.getByLabel('Your status').selectOption('busy');
  await bob.ns.expect((it) => it.words[0] === 'NLN' && it.words[1] === 'BSY' && it.words[2] === 'alice@example.com', 'NLN BSY for Alice');
  await page.getByLabel('Your status').selectOption('online');
  await bob.ns.expect((it) => it.words[0] === 'NLN' && it.words[1] === 'NLN' && it.words[2] === 'alice@example.com', 'NLN NLN for Alice');
  await page.locator('#me-psm').evaluate((el) => el.blur());
  await carol.locator('.contact[data-handle="alice@example.com"]').filter({ hasText: 'Alice Liddell' })
    .filter({ hasText: 'Down the rabbit hole' }).waitFor();
  await noToasts(page);
  await page.screenshot({ path: path.join(artefacts, 'contact-list.png') });

  begin('block, unblock and remove a contact from its menu');
  const erinRow = list.locator('.contact[data-handle="erin@example.com"]');
  const erinMenu = erinRow.getByRole('button', { name: /^More for/ });
  await erinMenu.click();
  await page.getByRole('menuitem', { name: 'Block' }).click();
  await erinRow.locator('.tag').filter({ hasText: 'blocked' }).waitFor();
  await erinMenu.click();
  await page.getByRole('menuitem', { name: 'Unblock' }).click();
  await erinRow.locator('.tag').waitFor({ state: 'detached' });
  await erinMenu.click();
  await page.getByRole('menuitem', { name: 'Remove contact' }).click();
  await erinRow.waitFor({ state: 'detached' });

  begin('a conversation with the MSN user: the ring is answered, messages cross both ways');
  await bobRow.click();
  const sb = await bob.answer('Alice opens a conversation');
  const conversation = page.locator('#conversation');
  const messages = page.locator('#messages');
  await messages.getByText('Bob Builder joined the conversation.').waitFor();
  const compose = page.getByLabel('Message', { exact: true });
  await compose.pressSequentially('Hello Bob', { delay: 20 });
  await sb.expect((it) => it.words[0] === 'MSG' && it.payload.includes('TypingUser: alice@example.com'), 'Alice typing');
  await compose.press('Enter');
  await sb.received('alice@example.com', isText('Hello Bob'), 'Alice\'s first message');
  await messages.locator('.msg.mine[data-seq]').filter({ hasText: 'Hello Bob' }).waitFor();

  await sb.typing('bob@example.com');
  await page.locator('#typing').filter({ hasText: 'Bob Builder is typing' }).waitFor();
  await sb.say('Hi Alice! Writing from MSN Messenger.');
  await messages.locator('.msg:not(.mine)').filter({ hasText: 'Hi Alice! Writing from MSN Messenger.' }).waitFor();
  await page.locator('#typing:empty').waitFor();
  await sb.say('This line is bold and blue', 'FN=Arial; EF=B; CO=ff0000; CS=0; PF=22');
  const formatted = messages.locator('.msg:not(.mine) .bubble').filter({ hasText: 'This line is bold and blue' });
  await formatted.waitFor();
  check((await formatted.evaluate((el) => getComputedStyle(el).fontWeight)) === '700', 'MSN bold shows bold');
  check((await formatted.evaluate((el) => getComputedStyle(el).color)) === 'rgb(0, 0, 255)', 'MSN colour (BGR ff0000) shows blue');

  begin('nudges both ways');
  await page.getByRole('button', { name: 'Send a nudge' }).click();
  await sb.expect((it) => it.words[0] === 'MSG' && it.words[1] === 'alice@example.com' &&
    it.payload.includes('text/x-msnmsgr-datacast') && it.payload.includes('ID: 1'), 'Alice\'s nudge');
  await messages.getByText('You sent a nudge.').waitFor();
  await sb.nudge();
  await messages.getByText('Bob Builder sent you a nudge!').waitFor();
  await page.locator('#conversation.shake').waitFor();

  await compose.fill('Everything arrives as it should?');
  await compose.press('Enter');
  await sb.received('alice@example.com', isText('Everything arrives as it should?'), 'Alice\'s question');
  await sb.say('Yes, and in order. (y)');
  await messages.getByText('Yes, and in order. (y)').waitFor();
  await messages.locator('.msg.pending').waitFor({ state: 'detached' });
  await page.locator('#conv-subtitle').filter({ hasText: 'Online' }).waitFor();
  await noToasts(page);
  await page.screenshot({ path: path.join(artefacts, 'conversation.png') });

  begin('history after closing and reopening the conversation');
  await page.getByRole('tab').filter({ hasText: 'Bob Builder' }).getByRole('button', { name: /^Close/ }).click();
  await page.locator('#empty').waitFor();
  await bobRow.click();
  for (const text of ['Hello Bob', 'Hi Alice! Writing from MSN Messenger.', 'Yes, and in order. (y)']) {
    await messages.locator('.msg').filter({ hasText: text }).waitFor();
  }

  begin('an MSN user starts a conversation: the page joins by itself and shows it as unread');
  const xfr = await dave.ns.command('XFR 20 SB');
  const daveSb = new Msnp(Number(xfr.words[3].split(':').pop()), 'dave@example.com SB (his own)');
  dave.switchboards.push(daveSb);
  await daveSb.command(`USR 1 dave@example.com ${xfr.words[5]}`);
  // Dave talks to Bob first: what was said before Alice's page joined
  // reaches it in the room's history, and is as unread as a live message.
  await daveSb.command('CAL 2 bob@example.com');
  const bobWithDave = await bob.answer('Dave rings Bob');
  await daveSb.expect((it) => it.words[0] === 'JOI' && it.words[1] === 'bob@example.com', 'Bob joining Dave\'s switchboard');
  await daveSb.say('Shall we ask Alice?');
  await bobWithDave.received('dave@example.com', isText('Shall we ask Alice?'), 'Dave\'s question to Bob');
  bobWithDave.send('OUT\r\n');
  await daveSb.expect((it) => it.words[0] === 'BYE' && it.words[1] === 'bob@example.com', 'Bob leaving Dave\'s switchboard');
  await daveSb.command('CAL 3 alice@example.com');
  await daveSb.expect((it) => it.words[0] === 'JOI' && it.words[1] === 'alice@example.com', 'Alice joining Dave\'s switchboard');
  await daveSb.say('Hi Alice, Dave here. Got a minute?');
  const daveTab = page.getByRole('tab').filter({ hasText: 'Dave on MSN 4.7' });
  await daveTab.locator('.badge').filter({ hasText: '2' }).waitFor();
  await daveTab.click();
  for (const text of ['Shall we ask Alice?', 'Hi Alice, Dave here. Got a minute?']) {
    await messages.locator('.msg:not(.mine)').filter({ hasText: text }).waitFor();
  }
  await compose.fill('Sure, Dave!');
  await compose.press('Enter');
  await daveSb.received('alice@example.com', isText('Sure, Dave!'), 'Alice\'s answer to Dave');
  await daveTab.locator('.badge').waitFor({ state: 'detached' });

  begin('a named room: join, invite the MSN user, leave, join again and read its history');
  await page.getByRole('button', { name: 'Join a room…' }).click();
  await page.getByLabel('Room name').fill('lobby');
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await page.locator('#conv-title').filter({ hasText: '#lobby' }).waitFor();
  await page.getByRole('button', { name: 'Invite someone' }).click();
  await page.locator('#invite-dialog').getByLabel('Contact').selectOption('bob@example.com');
  await page.getByRole('button', { name: 'Invite', exact: true }).click();
  const lobby = await bob.answer('Alice invites Bob to the lobby');
  check(lobby.room === 'name:lobby', `the lobby's room id: ${lobby.room}`);
  await messages.getByText('Bob Builder joined the conversation.').waitFor();
  await page.getByRole('button', { name: 'Invite someone' }).click();
  await page.locator('#invite-dialog').getByLabel('Contact').selectOption('dave@example.com');
  await page.getByRole('button', { name: 'Invite', exact: true }).click();
  const daveLobby = await dave.answer('Alice invites Dave to the lobby');
  await messages.getByText('Dave on MSN 4.7 joined the conversation.').waitFor();
  await compose.fill('Welcome to the lobby');
  await compose.press('Enter');
  await lobby.received('alice@example.com', isText('Welcome to the lobby'), 'Alice in the lobby');
  await lobby.say('Glad to be here');
  await messages.getByText('Glad to be here').waitFor();
  await page.getByRole('button', { name: 'Leave the conversation' }).click();
  await lobby.expect((it) => it.words[0] === 'BYE' && it.words[1] === 'alice@example.com', 'Alice leaving the lobby');
  await page.getByRole('button', { name: 'Join a room…' }).click();
  await page.getByLabel('Room name').fill('lobby');
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await messages.locator('.msg.mine').filter({ hasText: 'Welcome to the lobby' }).waitFor();
  await messages.locator('.msg:not(.mine)').filter({ hasText: 'Glad to be here' }).waitFor();
  await lobby.expect((it) => it.words[0] === 'JOI' && it.words[1] === 'alice@example.com', 'Alice back in the lobby');

  begin('the network drops under the page');
  // WebSocket sessions the gateway has seen end, plain page loads aside.
  const wsClosed = () => gateway.output.split('\n').filter((l) =>
    l.includes('event=connection_closed protocol=ws') && !l.includes('plain HTTP request answered')).length;
  const closedBefore = wsClosed();
  const lobbyMark = lobby.items.length;
  relay.cut();
  await waitFor(gateway.events, 'output', () => wsClosed() > closedBefore, 'the gateway seeing the page\'s connection end');
  await page.locator('#connection').filter({ hasText: /Connection lost|Reconnecting/ }).waitFor();
  // Dave is still there to read it (an MSN client sends only to someone).
  await lobby.say('Sent while you were away');
  await daveLobby.received('bob@example.com', isText('Sent while you were away'), 'Bob\'s message in the lobby');
  await compose.fill('Typed while offline');
  await compose.press('Enter');
  await messages.locator('.msg.pending').filter({ hasText: 'Typed while offline' }).waitFor();
  await page.screenshot({ path: path.join(artefacts, 'offline.png') });
  // The page keeps trying, backing off: two refused attempts, then the network is back.
  await waitFor(relay.emitter, 'refused', () => relay.refused >= 2, 'two reconnection attempts', 20000);
  const refusedAt = performance.now();
  relay.restore();

  begin('the page reconnects by itself and resumes');
  await page.locator('#app[data-connection="online"]').waitFor({ timeout: 40000 });
  log(`back online ${((performance.now() - refusedAt) / 1000).toFixed(1)} s after the network returned`);
  await messages.locator('.msg').filter({ hasText: 'Sent while you were away' }).waitFor();
  await lobby.received('alice@example.com', isText('Typed while offline'), 'the message typed while offline');
  await messages.locator('.msg.pending').waitFor({ state: 'detached' });
  // A later message from each side: anything sent twice would have come before these.
  await lobby.say('Welcome back');
  await messages.getByText('Welcome back').waitFor();
  await compose.fill('Thanks, I am back');
  await compose.press('Enter');
  await lobby.received('alice@example.com', isText('Thanks, I am back'), 'Alice after the reconnect');
  const awayCount = await messages.locator('.msg').filter({ hasText: 'Sent while you were away' }).count();
  check(awayCount === 1, `the message sent while away shows once (${awayCount} times)`);
  const typedCount = lobby.items.filter((it) => it.words[0] === 'MSG' && it.payload && it.payload.endsWith('\r\n\r\nTyped while offline')).length;
  check(typedCount === 1, `the message typed while offline reached the MSN user once (${typedCount} times)`);
  const shown = await messages.locator('.msg').filter({ hasText: 'Typed while offline' }).count();
  check(shown === 1, `the message typed while offline shows once (${shown} times)`);
  // Within the grace period the MSN users in the lobby saw Alice neither leave nor come back.
  const flicker = lobby.items.slice(lobbyMark).filter((it) => (it.words[0] === 'BYE' || it.words[0] === 'JOI') && it.words[1] === 'alice@example.com');
  check(flicker.length === 0, `no BYE or JOI for Alice in the lobby while she was away (${flicker.map((it) => it.words.join(' ')).join('; ')})`);

  begin('the conversation with the MSN user carries on after the drop');
  await page.getByRole('tab').filter({ hasText: 'Bob Builder' }).click();
  await compose.fill('Still there, Bob?');
  await compose.press('Enter');
  // The room kept Alice's place through the grace period. (Past it, the
  // page would open a new room and Bob's client would be rung again.)
  const arrived = await Promise.race([
    sb.received('alice@example.com', isText('Still there, Bob?'), 'Alice in the first room').then(() => 'same room'),
    bob.answer('the page opening a new conversation').then((again) =>
      again.received('alice@example.com', isText('Still there, Bob?'), 'Alice in a new room').then(() => 'new room')),
  ]);
  check(arrived === 'same room', `the message after the drop reached Bob in the ${arrived}`);
  await messages.locator('.msg.mine[data-seq]').filter({ hasText: 'Still there, Bob?' }).waitFor();

  begin('a reload of the tab signs in again with the session token and rejoins the room');
  await page.reload();
  await page.locator('#app[data-view="main"][data-connection="online"]').waitFor();
  await list.locator('.contact[data-handle="bob@example.com"][data-status="online"]').waitFor();
  await page.getByRole('tab').filter({ hasText: '#lobby' }).click();
  await messages.locator('.msg.mine').filter({ hasText: 'Thanks, I am back' }).waitFor();
  await messages.locator('.msg:not(.mine)').filter({ hasText: 'Sent while you were away' }).waitFor();

  check(pageErrors.length === 0, `no errors in the page:\n${pageErrors.join('\n')}`);
  begin('passed');
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  console.error(`FAILED during "${step}": ${err.stack || err}`);
  if (pageErrors.length) console.error(pageErrors.join('\n'));
  console.error('--- gateway log (last 60 lines) ---');
  console.error(gateway.output.split('\n').slice(-60).join('\n'));
  if (browser) {
    try {
      const pages = browser.contexts().flatMap((c) => c.pages());
      if (pages[0]) await pages[0].screenshot({ path: path.join(artefacts, 'failure.png') });
    } catch { /* best effort */ }
  }
} finally {
  for (const u of msnUsers) u.close();
  if (browser) await browser.close().catch(() => {});
  if (relay) relay.close();
  await gateway.stop();
  gateway.cleanup();
}
console.log(failed ? 'browser test: 0 passed, 1 failed' : 'browser test: 1 passed, 0 failed');
process.exit(failed ? 1 : 0);
