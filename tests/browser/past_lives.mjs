// My channel after a live has ended: its state is "Done", its viewer count
// is shown, and it offers neither reconfirming nor cancelling.  Input:
// base, user, password, done (ID), viewers.
import { input, run, newPage, shot, check, text, myChannel } from "./lib.mjs";

run(async () => {
  const page = await newPage({ name: "past" });
  const card = await myChannel(page, input.done);
  check((await text(page, `#reservations li[data-id="${input.done}"] .badge.state`)) === "Done", "the live is done");
  check((await text(page, `#reservations li[data-id="${input.done}"] dd.viewers`)) === String(input.viewers),
    "its viewer count is shown");
  check((await card.locator("button.reconfirm, button.cancel").count()) === 0, "nothing to reconfirm or cancel");
  await shot(page, "01-my-channel-past-live");
});
