// A broadcaster in the browser: logs in (a wrong password first), picks a
// date in the calendar by keyboard, picks slots in the availability grid,
// fills the booking form (a refused field first), sees the fee, discards
// one request, books, reconfirms and reads the settings on My channel,
// cancels another booking; the title (an XSS attempt) is text everywhere;
// the pages fit a phone.  Input: base, user, password, day (YYYY-MM-DD, in
// the current month or the next), title, other (a booking to cancel),
// other_title.
import { input, run, newPage, shot, check, call, text, fitsWidth, log } from "./lib.mjs";

const ID_RE = /^[a-z2-7]{26}$/;

async function login(page, password) {
  await page.fill("#login-user", input.user);
  await page.fill("#login-password", password);
  await page.click("form.login button[type=submit]");
}

// Shows the month of `day` in the calendar.
async function showMonth(page, day) {
  for (let i = 0; i < 2; i++) {
    if (await page.locator(`#calendar button.day[data-date="${day}"]`).count()) return;
    await page.click("#next-month");
  }
  check(await page.locator(`#calendar button.day[data-date="${day}"]`).count(), `the calendar shows ${day}`);
}

// The booking form of a password live (the grid chose the slots).
async function fillForm(page, broadcastPassword) {
  await page.check('input[name="level"][value="password"]');
  await page.locator("#f-shared_password").waitFor();
  await page.fill("#f-title", input.title);
  await page.fill("#f-summary", "Songs and talk");
  await page.fill("#f-detail", "Two hours of songs.\nQuestions welcome.");
  await page.check("#f-show_email");
  await page.fill("#f-broadcast_password", broadcastPassword);
  await page.fill("#f-shared_password", "view-pass");
  await page.fill("#f-friends", "bob@example.com\ncarol@localhost");
}

run(async () => {
  const page = await newPage({ name: "broadcaster" });

  // ---- login ----
  await page.goto(`${input.base}/book`);
  await page.waitForSelector("#login-user");
  await shot(page, "01-login");
  await login(page, "not-the-password");
  await page.locator("form.login [role=alert]", { hasText: "Wrong user name or password" }).waitFor();
  await login(page, input.password);
  await page.waitForSelector("#booking:not([hidden])");
  check((await text(page, "#whoami")).includes(input.user), "the page names who is logged in");

  // ---- a date by keyboard: focus the day before, then ArrowRight and Enter ----
  const dayBefore = input.day_before;
  await showMonth(page, dayBefore);
  await page.focus(`#calendar button.day[data-date="${dayBefore}"]`);
  await page.keyboard.press("ArrowRight");
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.dataset.date);
  check(focused === input.day, `ArrowRight moves the focus to ${input.day} (it is on ${focused})`);
  await page.keyboard.press("Enter");
  await page.locator(`#calendar button.day[data-date="${input.day}"][aria-pressed="true"]`).waitFor();
  await page.locator("#avail-date", { hasText: String(Number(input.day.slice(8))) }).waitFor();

  // ---- the grid: both channels with capacity, bandwidth and price; the other booking is booked ----
  const heads = await page.locator("#grid thead th.channel").allTextContents();
  check(heads.length === 2, `two channels in the grid (${heads})`);
  check(/Main stage.*50 viewers · 2000 kbps · (JP)?¥3,000\/h/.test(heads[0]), `main's facts: ${heads[0]}`);
  check(/Side room.*5 viewers · 500 kbps · (JP)?¥1,000\/h/.test(heads[1]), `side's facts: ${heads[1]}`);
  await page.locator(`#grid button.slot[data-channel="main"][data-slot="36"]`).waitFor();
  const booked = await page.locator("#grid tbody tr").nth(input.other_slot).locator("td").first().textContent();
  check(booked.trim() === "Booked", `the other booking's slot is booked (${booked})`);
  await shot(page, "02-calendar-and-grid");

  // ---- slots: 18:00 to 20:00 on the main stage ----
  await page.click(`#grid button.slot[data-channel="main"][data-slot="36"]`);
  await page.click(`#grid button.slot[data-channel="main"][data-slot="39"]`);
  check((await page.locator("#grid button.slot.selected").count()) === 4, "four slots chosen");
  check((await page.inputValue("#f-channel")) === "main", "channel main");
  check((await page.inputValue("#f-start")) === `${input.day}T18:00:00Z`, "start 18:00");
  check((await page.inputValue("#f-end")) === `${input.day}T20:00:00Z`, "end 20:00");

  // ---- the form, with a password the server refuses ----
  await fillForm(page, "abc");
  await page.fill("#f-genre", "talk");
  await page.click("#quote-button");
  await page.locator("#f-broadcast_password[aria-invalid=true]").waitFor();
  check((await text(page, "#f-broadcast_password-error")).includes("broadcast_password"), "the refused field is named");
  await shot(page, "03-form-error");
  await page.fill("#f-broadcast_password", "cast-pass");

  // ---- the fee; discarding stores nothing ----
  await page.click("#quote-button");
  await page.waitForSelector("#step-confirm:not([hidden])");
  const quote = await page.locator("#quote").textContent();
  for (const want of ["¥6,000", input.email, "Main stage", "Password", "bob@example.com, carol@localhost", "2000 kbps"]) {
    check(quote.includes(want), `the confirmation shows ${want}`);
  }
  check(quote.includes(input.title), "the confirmation shows the title as text");
  await shot(page, "04-confirm");
  await page.click("#discard");
  await page.locator("#status", { hasText: "nothing was booked" }).waitFor();
  check((await call("count_reservations")) === 1, "discarding stored nothing");

  // ---- again, change once, then book ----
  await page.click(`#grid button.slot[data-channel="main"][data-slot="36"]`);
  await page.click(`#grid button.slot[data-channel="main"][data-slot="39"]`);
  await fillForm(page, "cast-pass");
  await page.click("#quote-button");
  await page.waitForSelector("#step-confirm:not([hidden])");
  await page.click("#change");
  await page.waitForSelector("#step-form:not([hidden])");
  await page.fill("#f-genre", "music");
  await page.click("#quote-button");
  await page.waitForSelector("#step-confirm:not([hidden])");
  check((await page.locator("#quote").textContent()).includes("music"), "the changed genre is in the confirmation");
  await page.click("#confirm");
  await page.waitForSelector("#step-done:not([hidden])");
  const rid = await text(page, "#rid");
  check(ID_RE.test(rid), `a reservation ID (${rid})`);
  await shot(page, "05-booked");
  const stored = await call("reservation", { id: rid });
  log(`booked ${rid}: ${JSON.stringify(stored)}`);

  // ---- My channel: reconfirm, settings, cancel the other booking ----
  await page.click('#step-done a[href="/channel"]');
  await page.waitForSelector(`#reservations li[data-id="${rid}"]`);
  const card = page.locator(`#reservations li[data-id="${rid}"]`);
  check((await card.locator("h3").textContent()) === input.title, "My channel shows the title as text");
  check((await card.locator(".badge.state").textContent()) === "Awaiting reconfirmation", "awaiting reconfirmation");
  await shot(page, "06-my-channel");
  await card.locator("button.reconfirm").click();
  await page.waitForSelector("#settings:not([hidden])");
  const settings = await page.locator("#settings-list").textContent();
  for (const want of [rid, "view-pass", `${rid}@live.localhost`, `/live/${rid}`, "2000 kbps", "bob@example.com"]) {
    check(settings.includes(want), `the settings show ${want}`);
  }
  await page.locator(`#reservations li[data-id="${rid}"] .badge.state`, { hasText: "Reconfirmed" }).waitFor();
  await shot(page, "07-settings");
  await page.click("#settings-close");
  await page.locator(`#reservations li[data-id="${rid}"] button.show-settings`).click();
  await page.waitForSelector("#settings:not([hidden])");
  check((await page.locator("#settings-list").textContent()).includes("view-pass"), "the settings again");

  const other = page.locator(`#reservations li[data-id="${input.other}"]`);
  await other.locator("button.cancel").click();
  await other.locator(".confirm-cancel").waitFor();
  await shot(page, "08-cancel-confirm");
  await other.locator("button.confirm-yes").click();
  await page.locator(`#reservations li[data-id="${input.other}"] .badge.state`, { hasText: "Cancelled" }).waitFor();
  const cancelled = await call("reservation", { id: input.other });
  check(cancelled.state === "cancelled", "the other booking is cancelled on the server");
  await shot(page, "09-cancelled");

  // ---- the schedule and the live page: the title is text, nothing ran ----
  await page.goto(`${input.base}/`);
  const item = page.locator(`li.live-card[data-id="${rid}"]`);
  await item.waitFor();
  check((await item.locator("h2").textContent()) === input.title, "the schedule shows the title as text");
  check((await page.locator("li.live-card img, li.live-card script").count()) === 0, "no element from the title");
  check((await page.locator(`li.live-card[data-id="${input.other}"]`).count()) === 0, "cancelled: not listed");
  await shot(page, "10-schedule");
  await item.locator("h2 a").click();
  await page.waitForSelector("#live:not([hidden])");
  check((await text(page, "#title")) === input.title, "the live page shows the title as text");
  check((await page.locator("#password-row:not([hidden])").count()) === 1, "a password live asks for its password");
  const details = await page.locator("#details").textContent();
  check(details.includes(input.email), "the broadcaster's e-mail is shown (chosen)");
  check(details.includes("up to 50"), "the capacity is shown");
  check(await page.evaluate(() => window.__xss === undefined), "no script from the title ran");
  await shot(page, "11-live-page");

  // ---- log out ----
  await page.goto(`${input.base}/channel`);
  await page.click("#logout");
  await page.waitForSelector("#login-user");

  // ---- a phone ----
  const phone = await newPage({ phone: true, name: "phone" });
  for (const [path, name, ready] of [
    ["/", "12-phone-schedule", "li.live-card"],
    [`/live/${rid}`, "13-phone-live", "#live:not([hidden])"],
    ["/book", "14-phone-login", "#login-user"],
  ]) {
    await phone.goto(`${input.base}${path}`);
    await phone.waitForSelector(ready);
    check(await fitsWidth(phone), `${path} fits a phone's width`);
    await shot(phone, name);
  }
  await login(phone, input.password);
  // the booked day (late in the evening today has no slot left to book)
  await phone.waitForSelector("#booking:not([hidden])");
  await showMonth(phone, input.day);
  await phone.click(`#calendar button.day[data-date="${input.day}"]`);
  await phone.waitForSelector("#grid button.slot.free");
  check(await fitsWidth(phone), "the booking page fits a phone's width");
  await shot(phone, "15-phone-book");
  await phone.goto(`${input.base}/channel`);
  await phone.waitForSelector(`#reservations li[data-id="${rid}"]`);
  check(await fitsWidth(phone), "My channel fits a phone's width");
  await shot(phone, "16-phone-my-channel");
});
