// A guest watches a live on its page: joins the chat of a password live
// (the shared password), the player asks for its media token over the
// chat's connection and waits on the media WebSocket; the broadcaster
// (ffmpeg, on the test's side) goes on air; the player decodes frames with
// WebCodecs and draws them (data-frames counts them), and decodes its Opus
// sound (data-audio-frames), played once turned on, in step with the
// pictures (data-audio-synced, from the sender reports); the broadcaster ends
// the live and the player says so, then comes back and the page plays again
// without a reload.  In the room of a later live, whose
// stream may not be watched yet, the player says from when.
// Input: base, live, password, early (a live ID), early_opens.
import { input, run, newPage, shot, check, call, text, log } from "./lib.mjs";

const FRAMES_WITHIN_MS = 15000;

async function frames(page) {
  return Number(await page.getAttribute("#player", "data-frames"));
}

run(async () => {
  const page = await newPage({ name: "viewer" });
  await page.goto(`${input.base}/live/${input.live}`);
  await page.waitForSelector("#live:not([hidden])");
  check((await text(page, "#stream-state")) === "Join the chat to watch the live.", "the player asks to join first");
  check((await page.evaluate(() => typeof VideoDecoder)) === "function", "the browser has WebCodecs");

  // ---- in the room: the player waits for the live ----
  await page.fill("#nick", "Watcher");
  await page.fill("#password", input.password);
  await page.click("#join-button");
  await page.waitForSelector("#room:not([hidden])");
  await page.waitForSelector('#player[data-stream="waiting"]');
  check((await text(page, "#stream-state")) === "Waiting for the live to start.", "the player waits");
  check((await frames(page)) === 0, "no frame before the live");
  await shot(page, "01-waiting");

  // ---- on air: frames decoded and drawn ----
  await call("go_live");
  const t0 = Date.now();
  await page.waitForFunction(() => Number(document.querySelector("#player").dataset.frames) > 0, null, { timeout: FRAMES_WITHIN_MS });
  log(`first frame ${Date.now() - t0} ms after going on air`);
  check((await page.getAttribute("#player", "data-stream")) === "playing", "the player is playing");
  check(await page.locator("#video").isVisible(), "the picture is shown");
  await page.waitForFunction(() => Number(document.querySelector("#player").dataset.frames) >= 25, null, { timeout: FRAMES_WITHIN_MS });
  // The canvas has the stream's size and a picture that is not black.
  const pic = await page.evaluate(() => {
    const c = document.querySelector("#video");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
    return { w: c.width, h: c.height, mean: sum / (d.length / 4) / 3 };
  });
  check(pic.w === 320 && pic.h === 240, `the canvas has the stream's size (${pic.w}x${pic.h})`);
  check(pic.mean > 20, `the picture is not black (mean ${pic.mean})`);
  const viewers = await call("viewers");
  check(viewers === 1, `the browser counts as a viewer (${viewers})`);
  // the sound: decoded (AudioDecoder, Opus), and played once turned on, by keyboard
  await page.waitForFunction(() => Number(document.querySelector("#player").dataset.audioFrames) >= 25, null, { timeout: FRAMES_WITHIN_MS });
  check(await page.locator("#sound").isVisible(), "the live has sound: the button shows");
  check((await page.getAttribute("#sound", "aria-pressed")) === "false", "the sound starts off");
  await page.locator("#sound").focus();
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelector("#player").dataset.sound !== "off");
  check((await page.getAttribute("#player", "data-sound")) === "on", "the sound plays (its AudioContext runs)");
  check((await page.getAttribute("#sound", "aria-pressed")) === "true", "the button says the sound is on");
  // lip sync: the broadcaster's sender reports put sound and pictures on one clock
  await page.waitForFunction(() => Number(document.querySelector("#player").dataset.audioSynced) >= 25, null, { timeout: FRAMES_WITHIN_MS });
  await shot(page, "02-playing");

  // ---- the broadcaster ends the live ----
  const before = await frames(page);
  await call("end_live");
  await page.waitForSelector('#player[data-stream="ended"]');
  check((await text(page, "#stream-state")) === "The live has ended.", "the player says the live has ended");
  await page.waitForFunction(() => document.querySelector("#player-state").textContent === "This live has ended");
  check((await frames(page)) >= before, "the frame count stays");
  await shot(page, "03-ended");

  // ---- the broadcaster comes back: the page plays again, no reload ----
  // (the page waits as a viewer again meanwhile, still saying the live has ended)
  const deadline = Date.now() + FRAMES_WITHIN_MS;
  while ((await call("viewers")) !== 1) {
    check(Date.now() < deadline, "the page waits for the broadcaster as a viewer again");
    await page.waitForTimeout(100);
  }
  check((await text(page, "#stream-state")) === "The live has ended.", "meanwhile it still says the live has ended");
  const ended = await frames(page);
  await call("go_live");
  await page.waitForSelector('#player[data-stream="playing"]', { timeout: FRAMES_WITHIN_MS });
  await page.waitForFunction((n) => Number(document.querySelector("#player").dataset.frames) >= n + 25, ended, { timeout: FRAMES_WITHIN_MS });
  await page.waitForFunction(() => document.querySelector("#viewers-now").textContent === "1 viewer (on air)", null, { timeout: FRAMES_WITHIN_MS });
  // the schedule marks it on air, with its viewer
  const schedule = await newPage({ name: "schedule" });
  await schedule.goto(`${input.base}/`);
  const badge = schedule.locator(`li[data-id="${input.live}"] .badge.on-air`);
  await badge.waitFor();
  check((await badge.textContent()) === "On air · 1 watching", `the schedule's badge: ${await badge.textContent()}`);
  await shot(page, "03b-back-on-air");
  await call("end_live");
  await page.waitForSelector('#player[data-stream="ended"]');

  // ---- a live whose room is open before its stream may be watched ----
  const early = await newPage({ name: "early" });
  await early.goto(`${input.base}/live/${input.early}`);
  await early.waitForSelector("#live:not([hidden])");
  await early.fill("#nick", "Early bird");
  await early.click("#join-button");
  await early.waitForSelector("#room:not([hidden])");
  await early.waitForSelector('#player[data-stream="waiting"]');
  const line = await text(early, "#stream-state");
  const opens = await early.evaluate((iso) => {
    // the pages' date format (common.js)
    const f = new Intl.DateTimeFormat(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
    return f.format(new Date(iso));
  }, input.early_opens);
  check(line === `The stream can be watched from ${opens}.`, `the player says when the stream opens: ${line} (${opens})`);
  await shot(early, "04-not-yet");
});
