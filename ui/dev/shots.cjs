// DEV ONLY: drives the dev preview (dev-dist + mock-tauri.js) in headless Chromium and saves
// screenshots of the main screens and states. Needs `puppeteer-core` (no browser download)
// on NODE_PATH and Debian's `chromium`. Usage (see dev/preview.sh):
//   NODE_PATH=/path/to/node_modules node dev/shots.cjs http://127.0.0.1:8765 /tmp/ui-shots
"use strict";
const puppeteer = require("puppeteer-core");
const fs = require("fs");

const base = process.argv[2] || "http://127.0.0.1:8765";
const out = process.argv[3] || "/tmp/ui-shots";
const only = process.argv[4] ? new RegExp(process.argv[4]) : null;
fs.mkdirSync(out, { recursive: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function open(browser, { query = "", width = 1200, height = 800, dark = false } = {}) {
  const page = await browser.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warn") console.log(`  [console.${m.type()}] ${m.text()}`);
  });
  page.on("pageerror", (e) => console.log(`  [pageerror] ${e.message}`));
  await page.setViewport({ width, height, deviceScaleFactor: 1 });
  await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: dark ? "dark" : "light" }]);
  await page.goto(`${base}/${query}`, { waitUntil: "networkidle0" });
  await sleep(600);
  return page;
}

async function shot(page, name) {
  const path = `${out}/${name}.png`;
  await page.screenshot({ path });
  console.log("saved", path);
}

async function clickRoom(page, name) {
  await page.evaluate((name) => {
    const el = [...document.querySelectorAll(".room-item")].find(
      (b) => b.querySelector(".room-name").textContent === name,
    );
    el.click();
  }, name);
  await sleep(700);
}

const scenes = {
  async server(browser) {
    const page = await open(browser, { query: "?state=fresh" });
    await shot(page, "01-server");
    await page.type("#server-url", "chat server");
    await page.keyboard.press("Enter");
    await sleep(900);
    await shot(page, "02-server-bad-url");
  },
  async login(browser) {
    const page = await open(browser, { query: "?state=login" });
    await page.type("#password", "wrongpass");
    await page.keyboard.press("Enter");
    await sleep(900);
    await shot(page, "03-login-wrong-password");
    const tab = (await page.$$(".segment"))[1];
    await tab.click();
    await page.click("#username", { clickCount: 3 });
    await page.type("#username", "_x");
    await page.click("#password", { clickCount: 3 });
    await page.type("#password", "short");
    await page.keyboard.press("Enter");
    await sleep(300);
    await shot(page, "04-register-rules");
  },
  async main(browser) {
    const page = await open(browser);
    await clickRoom(page, "general");
    await shot(page, "05-main-general");
    // Hover an own sent message to show its actions.
    const mine = await page.$$(".message.mine:not(.pending):not(.failed)");
    if (mine.length) {
      await mine[mine.length - 1].hover();
      await sleep(200);
      await shot(page, "06-main-hover-actions");
    }
    await page.click('button[aria-label="Show members"]');
    await sleep(600);
    await shot(page, "07-main-members");
  },
  async dark(browser) {
    const page = await open(browser, { dark: true });
    await clickRoom(page, "general");
    await page.click('button[aria-label="Show members"]');
    await sleep(600);
    await shot(page, "08-dark-main");
    const page2 = await open(browser, { dark: true, query: "?state=login" });
    await shot(page2, "09-dark-login");
  },
  async narrow(browser) {
    const page = await open(browser, { width: 420, height: 800 });
    await shot(page, "10-narrow-empty");
    await page.click('button[aria-label="Show rooms"]');
    await sleep(400);
    await shot(page, "11-narrow-sidebar");
    await clickRoom(page, "general");
    await shot(page, "12-narrow-chat");
  },
  async banner(browser) {
    const page = await open(browser, { query: "?conn=reconnecting" });
    await clickRoom(page, "alice");
    await sleep(1200);
    await shot(page, "13-reconnecting-dm");
  },
  async dialogs(browser) {
    const page = await open(browser);
    await clickRoom(page, "design-team");
    await page.click('button[aria-label="Create a room"]');
    await sleep(300);
    await page.keyboard.press("Enter");
    await sleep(200);
    await shot(page, "14-create-room");
    await page.keyboard.press("Escape");
    await page.click('button[aria-label="Browse public rooms"]');
    await sleep(700);
    await shot(page, "15-browse-rooms");
    await page.keyboard.press("Escape");
    await page.click('button[aria-label="New direct message"]');
    await sleep(200);
    await page.keyboard.type("a");
    await sleep(700);
    await shot(page, "16-new-dm");
    await page.keyboard.press("Escape");
    await page.click('button[aria-label="Settings"]');
    await sleep(500);
    await shot(page, "17-settings");
    await page.keyboard.press("Escape");
  },
  async search(browser) {
    const page = await open(browser);
    await clickRoom(page, "random");
    await page.keyboard.down("Control");
    await page.keyboard.press("k");
    await page.keyboard.up("Control");
    await page.keyboard.type("lunch");
    await sleep(900);
    await shot(page, "18-search");
    await page.click(".search-hit");
    await sleep(500);
    await shot(page, "18b-search-jump");
    // An old message: pages back until it is loaded.
    await page.click("#room-search");
    await page.keyboard.type("flaky");
    await sleep(900);
    const hits = await page.$$(".search-hit");
    await hits[hits.length - 1].click();
    await sleep(2000);
    await shot(page, "18c-search-jump-old");
  },
  async edit(browser) {
    const page = await open(browser);
    await clickRoom(page, "general");
    const mine = await page.$$(".message.mine:not(.pending):not(.failed)");
    await mine[mine.length - 1].hover();
    await page.click('.message.mine:hover button[aria-label="Edit message"]');
    await sleep(300);
    await shot(page, "19-edit");
    await page.keyboard.press("Escape");
    // Send one that works and one that fails.
    await page.focus("#composer");
    await page.keyboard.type("Booked, see you at 12:30");
    await page.keyboard.press("Enter");
    await page.keyboard.type("this one will fail");
    await page.keyboard.press("Enter");
    await sleep(200);
    await shot(page, "20-sending");
    await sleep(1500);
    await shot(page, "21-sent-and-failed");
  },
  async scrollback(browser) {
    const page = await open(browser);
    await clickRoom(page, "general");
    await page.evaluate(() => (document.querySelector(".message-scroll").scrollTop = 0));
    await sleep(1500);
    await page.evaluate(() => (document.querySelector(".message-scroll").scrollTop = 0));
    await sleep(1500);
    const info = await page.evaluate(() => ({
      count: document.querySelectorAll(".message").length,
      top: document.querySelector(".message-scroll").scrollTop,
    }));
    console.log("  scrollback:", JSON.stringify(info));
    await page.evaluate(() => (document.querySelector(".message-scroll").scrollTop = 0));
    await sleep(300);
    await shot(page, "22-scrollback-top");
  },
  async live(browser) {
    const page = await open(browser, { query: "?live=1" });
    await clickRoom(page, "general");
    await sleep(11000);
    await shot(page, "23-live");
  },
  async session(browser) {
    const page = await open(browser);
    await clickRoom(page, "general");
    await page.evaluate(() =>
      window.__MOCK__.emit({ type: "session_ended", reason: "your session was revoked on another device" }),
    );
    await sleep(500);
    await shot(page, "24-session-ended");
  },
  async focus(browser) {
    const page = await open(browser);
    await clickRoom(page, "general");
    await page.keyboard.down("Shift");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    await page.keyboard.up("Shift");
    await sleep(200);
    await shot(page, "25-keyboard-focus");
  },
  async medium(browser) {
    const page = await open(browser, { width: 860, height: 640, dark: true });
    await clickRoom(page, "design-team");
    await page.click('button[aria-label="Show members"]');
    await sleep(600);
    await shot(page, "28-medium-dark-members");
    await page.click('button[aria-label="Create a room"]');
    await sleep(300);
    await shot(page, "29-medium-dark-dialog");
  },
  async toast(browser) {
    const page = await open(browser);
    await clickRoom(page, "general");
    const mine = await page.$$(".message.mine:not(.pending):not(.failed)");
    await mine[mine.length - 1].hover();
    await page.click('.message.mine:hover button[aria-label="Edit message"]');
    await sleep(200);
    await page.keyboard.type(" (this edit will fail)");
    await page.keyboard.press("Enter");
    await sleep(500);
    await shot(page, "27-toast");
  },
  async narrowdark(browser) {
    const page = await open(browser, { width: 420, height: 800, dark: true });
    await page.click('button[aria-label="Show rooms"]');
    await sleep(300);
    await clickRoom(page, "general");
    await shot(page, "26-narrow-dark");
  },
};

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  try {
    for (const [name, scene] of Object.entries(scenes)) {
      if (only && !only.test(name)) continue;
      console.log("scene", name);
      try {
        await scene(browser);
      } catch (e) {
        console.log(`  scene ${name} failed: ${e.message}`);
      }
    }
  } finally {
    await browser.close();
  }
})();
