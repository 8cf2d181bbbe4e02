// My channel shows a past live's chat transcript (the transcript plugin's
// GET /api/v1/reservations/<id>/transcript): the lines with their times from
// the start, the room's notices marked, what a viewer typed as markup shown
// as text, and the text form downloaded as a file.  Input: base, user,
// password, done (ID), said (a viewer's message).
import { readFileSync } from "node:fs";
import { input, run, newPage, shot, check, text, myChannel } from "./lib.mjs";

run(async () => {
  const page = await newPage({ name: "transcript" });
  const card = await myChannel(page, input.done);
  check((await text(page, `#reservations li[data-id="${input.done}"] dd.viewers-total`)) === "0", "no viewer in all");
  // by keyboard: focus the card's Transcript button and press Enter
  await card.locator("button.show-transcript").focus();
  await page.keyboard.press("Enter");
  await page.locator("#transcript").waitFor({ state: "visible" });
  check((await text(page, "#transcript-h")).includes("Night talk"), "the transcript's heading names the live");
  check(await page.evaluate(() => document.activeElement.id === "transcript-h"), "the focus moves to the transcript");
  const lines = page.locator("#transcript-list li");
  const all = await lines.allTextContents();
  const mine = all.find((l) => l.includes(input.said));
  check(mine, `the viewer's message is listed: ${JSON.stringify(all)}`);
  check(/^[+-]\d\d:\d\d:\d\d viewer /.test(mine.trim()), `with its time from the start and its nick: ${mine}`);
  check((await page.locator("#transcript-list img, #transcript-list b, #transcript-list script").count()) === 0,
    "markup in a message stays text");
  check(await page.evaluate(() => window.__xss === undefined), "nothing of the message ran");
  check((await page.locator("#transcript-list li.notice").count()) > 0, "the room's notices are marked");
  check((await page.locator("#transcript-list li.addressed").count()) === 1, "the message addressed to the host is marked");
  check(/messages?\. Times are from the start of the live/.test(await text(page, "#transcript-about")), "it says what it holds");
  await shot(page, "01-transcript");
  // the text form, as a file
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#transcript-download")]);
  check(download.suggestedFilename() === `transcript-${input.done}.txt`, `the file's name: ${download.suggestedFilename()}`);
  const saved = readFileSync(await download.path(), "utf8");
  check(saved.startsWith('Transcript of the live "Night talk"') && saved.includes(`<viewer> ${input.said}`),
    `the downloaded text: ${saved.slice(0, 300)}`);
  await page.click("#transcript-close");
  check(await page.locator("#transcript").isHidden(), "the transcript closes");
});
