// Guests on a live's page: the schedule, a password live, a wrong password,
// the right one; a second guest on a phone-sized screen and a slixmpp guest
// (the test's side) in the same room; messages every way, an XSS attempt as
// text, private messages, the participant list with oneself marked, the
// room's notices, leaving; then a full room and a room not open yet.
// Input: base, live, full, later, secret (IDs), password, title, xss,
// later_opens.
import { input, run, newPage, shot, check, call, text, fitsWidth } from "./lib.mjs";

async function join(page, nick, intro, password) {
  await page.fill("#nick", nick);
  await page.fill("#intro", intro);
  if (password !== null) await page.fill("#password", password);
  await page.click("#join-button");
}

async function waitJoined(page) {
  await page.waitForSelector("#room:not([hidden])");
}

async function say(page, body) {
  await page.fill("#text", body);
  await page.press("#text", "Enter");
}

function message(page, cls, body) {
  return page.locator(`#messages li.${cls}`, { hasText: body });
}

async function people(page) {
  return (await page.locator("#people li .nick").allTextContents()).map((s) => s.trim());
}

run(async () => {
  const alice = await newPage({ name: "alice" });

  // ---- the schedule: the password live is listed, the secret one is not ----
  await alice.goto(`${input.base}/`);
  const card = alice.locator(`li.live-card[data-id="${input.live}"]`);
  await card.waitFor();
  check((await card.locator(".badge").textContent()) === "Password", "the live is marked as needing a password");
  check((await alice.locator(`li.live-card[data-id="${input.secret}"]`).count()) === 0, "secret lives are not listed");
  await shot(alice, "01-schedule");

  // ---- the live page ----
  await card.locator("h2 a").click();
  await alice.waitForSelector("#live:not([hidden])");
  check((await text(alice, "#title")) === input.title, "the live's title");
  check((await alice.locator("#password-row:not([hidden])").count()) === 1, "a password field");
  check((await text(alice, "#player-state")) === "Not started yet", "the player shows the live's state");
  check((await text(alice, "#chat-time")).startsWith("The chat room closes in"), "the time left in the chat");
  await shot(alice, "02-live-page");

  // ---- a wrong password, then the right one ----
  await join(alice, "Alice Guest", "Hello from Osaka", "not-the-password");
  await alice.locator("#join-error", { hasText: "Wrong password" }).waitFor();
  check(await alice.locator("#room").isHidden(), "not in the room with a wrong password");
  await shot(alice, "03-wrong-password");
  await join(alice, "Alice Guest", "Hello from Osaka", input.password);
  await waitJoined(alice);
  await alice.locator("#people li.me", { hasText: "Alice Guest" }).waitFor();
  check((await text(alice, "#people li.me .you")) === "(you)", "oneself is marked in the participant list");
  await message(alice, "subject", input.title).waitFor();

  // ---- a second guest, on a phone ----
  const bob = await newPage({ phone: true, name: "bob" });
  await bob.goto(`${input.base}/live/${input.live}`);
  await bob.waitForSelector("#live:not([hidden])");
  await join(bob, "Bob", "", input.password);
  await waitJoined(bob);
  await alice.locator("#people li", { hasText: "Bob" }).waitFor();

  // ---- the slixmpp guest enters ----
  await call("slix_join", { nick: "Slix", intro: "I use slixmpp" });
  await alice.locator("#people li", { hasText: "Slix" }).waitFor();
  await bob.locator("#people li", { hasText: "Slix" }).waitFor();
  const list = await people(alice);
  check(JSON.stringify(list) === JSON.stringify(["Alice Guest", "Bob", "Slix"]), `alice's participant list: ${list}`);
  check((await text(alice, '#people li[data-nick="Slix"] .intro')) === "I use slixmpp", "a self-introduction");
  check((await text(bob, '#people li[data-nick="Alice Guest"] .intro')) === "Hello from Osaka", "alice's introduction");
  check((await text(alice, "#people-count")) === "(3)", "three in the room");

  // ---- messages: browser -> browser and slixmpp, slixmpp -> browsers ----
  await say(alice, "Hello from the browser");
  await message(bob, "msg", "Hello from the browser").waitFor();
  await call("slix_expect", { nick: "Alice Guest", body: "Hello from the browser" });
  await say(bob, "Hello from the phone");
  await message(alice, "msg", "Hello from the phone").waitFor();
  await call("slix_expect", { nick: "Bob", body: "Hello from the phone" });
  await call("slix_say", { body: "Hello from slixmpp" });
  await message(alice, "msg", "Hello from slixmpp").waitFor();
  await message(bob, "msg", "Hello from slixmpp").waitFor();
  check((await message(alice, "msg", "Hello from slixmpp").locator(".who").textContent()) === "Slix", "the sender's name");

  // ---- an XSS attempt is text ----
  await say(alice, input.xss);
  const xss = bob.locator("#messages li.msg .body").filter({ hasText: "window.__xss=1" });
  await xss.waitFor();
  check((await xss.textContent()) === input.xss, "the message shows as typed");
  check((await bob.locator("#messages img, #messages script, #messages b").count()) === 0, "no element from a message");
  check(await bob.evaluate(() => window.__xss === undefined), "no script from a message ran");
  await call("slix_expect", { nick: "Alice Guest", body: input.xss });

  // ---- private messages ----
  await alice.click('#people li[data-nick="Bob"] button.pm');
  check((await alice.inputValue("#to")) === "Bob", "the private message goes to Bob");
  await say(alice, "Just for you, Bob");
  await message(bob, "private", "Just for you, Bob").waitFor();
  check((await message(bob, "private", "Just for you, Bob").locator(".label").textContent()) === "Private from Alice Guest",
    "bob sees whom it is from");
  await message(alice, "private", "Just for you, Bob").waitFor();
  await call("slix_got_nothing", { body: "Just for you, Bob" });
  check((await alice.locator("#messages li.msg", { hasText: "Just for you" }).count()) === 0, "not in the room's messages");
  await call("slix_private", { nick: "Alice Guest", body: "Psst, Alice" });
  await message(alice, "private", "Psst, Alice").waitFor();
  check((await bob.locator("#messages li", { hasText: "Psst, Alice" }).count()) === 0, "bob does not see it");
  await alice.selectOption("#to", "");

  // ---- the room's notices, shown apart from messages ----
  const notice = alice.locator("#messages li.notice", { hasText: `The live "${input.title}"` }).first();
  await notice.waitFor({ timeout: 45000 });
  check((await notice.locator(".label").textContent()) === "Notice", "a notice is labelled");
  check((await alice.locator("#messages li.msg", { hasText: "The live" }).count()) === 0, "notices are not messages");
  await bob.locator("#messages li.notice").first().waitFor({ timeout: 45000 });
  await shot(alice, "04-chat");
  check(await fitsWidth(bob), "the live page with its chat fits a phone");
  await shot(bob, "05-chat-phone");

  // ---- leaving ----
  await bob.click("#leave");
  await bob.locator("#join-error", { hasText: "You left the chat" }).waitFor();
  check(await bob.locator("#room").isHidden(), "bob's chat is closed");
  await alice.locator('#people li[data-nick="Bob"]').waitFor({ state: "detached" });
  await call("slix_sees_leave", { nick: "Bob" });
  await shot(bob, "06-left-phone");
  await alice.click("#leave");
  await alice.locator("#join-error", { hasText: "You left the chat" }).waitFor();
  await call("slix_sees_leave", { nick: "Alice Guest" });

  // ---- a full room ----
  await alice.goto(`${input.base}/live/${input.full}`);
  await alice.waitForSelector("#live:not([hidden])");
  check(await alice.locator("#password-row").isHidden(), "a public live asks for no password");
  await join(alice, "Alice Guest", "", null);
  await alice.locator("#join-error", { hasText: "The room is full" }).waitFor();
  await shot(alice, "07-room-full");

  // ---- a room not open yet, with its opening time ----
  await alice.goto(`${input.base}/live/${input.later}`);
  await alice.waitForSelector("#live:not([hidden])");
  check((await text(alice, "#chat-time")).startsWith("The chat room opens in"), "the page says when the chat opens");
  await join(alice, "Alice Guest", "", null);
  const notOpen = alice.locator("#join-error", { hasText: "not open yet" });
  await notOpen.waitFor();
  const hhmm = input.later_opens.slice(11, 16);
  check((await notOpen.textContent()).includes(hhmm), `the opening time ${hhmm} is given: ${await notOpen.textContent()}`);
  await shot(alice, "08-room-not-open");
});
