// axon notify and axon bot (mautrix-go with goolm, built from this repo)
// against the Rust crypto stack Element uses: an alert posted into an
// encrypted room is decrypted by matrix-js-sdk as "<hostname>: message",
// and an encrypted command from the js-sdk user is answered, encrypted.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { BASE_URL, User, waitUntil } from "../lib/harness.js";

const T = { timeout: 120000 };

function buildAxon(dir) {
    // run.sh builds it once for the server and this test.
    if (process.env.AXON_INTEROP_NOTIFY_BINARY) return process.env.AXON_INTEROP_NOTIFY_BINARY;
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const bin = join(dir, "axon");
    const env = { ...process.env, GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? "go1.27.3" };
    const build = spawnSync("go", ["build", "-tags", "goolm", "-o", bin, "./cmd/axon"], { cwd: root, env, encoding: "utf8" });
    assert.equal(build.status, 0, `go build -tags goolm ./cmd/axon: ${build.stderr}`);
    return bin;
}

function run(bin, args, env, input = "") {
    const res = spawnSync(bin, args, { env: { ...process.env, ...env }, input, encoding: "utf8", timeout: 60000 });
    return { code: res.status, out: `${res.stdout}${res.stderr}` };
}

async function decrypted(device, roomId, predicate, what) {
    return waitUntil(
        async () => {
            const room = device.room(roomId);
            if (!room) return null;
            for (const ev of room.getLiveTimeline().getEvents()) {
                if (!ev.isEncrypted()) continue;
                await device.client.decryptEventIfNeeded(ev);
                if (ev.getType() === "m.room.message" && predicate(ev)) return ev;
            }
            return null;
        },
        () => {
            const seen = device
                .room(roomId)
                ?.getLiveTimeline()
                .getEvents()
                .filter((e) => e.isEncrypted())
                .map((e) => (e.isDecryptionFailure() ? `UTD(${e.decryptionFailureReason})` : e.getContent().body));
            return `${device.label} decrypts ${what} (seen: ${JSON.stringify(seen)})`;
        },
        { device, timeout: 30000 },
    );
}

describe("axon notify / axon bot with Rust crypto on the other side", () => {
    let dir, bin, alice, pusher, a1, roomId, env, bot;
    before(async () => {
        dir = mkdtempSync(join(tmpdir(), "axon-notify-interop-"));
        bin = buildAxon(dir);
        alice = await User.register("alice");
        pusher = await User.register("pusher");
        a1 = await alice.login("alice#1");
        await a1.client.initRustCrypto({ useIndexedDB: false });
        await a1.start();
        ({ room_id: roomId } = await a1.client.createRoom({
            preset: "private_chat",
            invite: [pusher.userId],
            initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
        }));
        env = {
            AXON_NOTIFY_HOMESERVER: BASE_URL,
            AXON_NOTIFY_USER: pusher.localpart,
            AXON_NOTIFY_ROOM: roomId,
            AXON_NOTIFY_STATE_DIR: join(dir, "notify-state"),
            AXON_NOTIFY_HOSTNAME: "web1",
            HOME: dir,
        };
        const login = run(bin, ["notify", "login", "--password-stdin"], env, `${pusher.password}\n`);
        assert.equal(login.code, 0, `axon notify login: ${login.out}`);
    });
    after(() => {
        bot?.kill("SIGTERM");
        alice?.stopAll();
        if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("an alert in an encrypted room decrypts in matrix-js-sdk", T, async () => {
        const res = run(bin, ["notify", "disk full on /var"], env);
        assert.equal(res.code, 0, `axon notify: ${res.out}`);
        const ev = await decrypted(a1, roomId, (e) => e.getContent().body === "web1: disk full on /var", '"web1: disk full on /var"');
        assert.equal(ev.getWireType(), "m.room.encrypted");
        assert.equal(ev.getContent().msgtype, "m.notice");
        const again = run(bin, ["notify", "--level", "critical", "second alert"], env);
        assert.equal(again.code, 0, again.out);
        const crit = await decrypted(a1, roomId, (e) => e.getContent().body?.includes("second alert"), "the critical alert");
        assert.equal(crit.getContent()["m.mentions"]?.room, true, "critical alerts mention the room");
    });

    it("the bot answers an encrypted command, encrypted", T, async () => {
        const cfg = join(dir, "bot.yaml");
        writeFileSync(
            cfg,
            [
                `homeserver: ${BASE_URL}`,
                `user: ${pusher.localpart}`,
                `state_dir: ${join(dir, "bot-state")}`,
                `hostname: web1`,
                `rooms: ["${roomId}"]`,
                `allow: ["${alice.userId}"]`,
                `commands:`,
                `  echo: {exec: /bin/echo, allow_args: 2}`,
                "",
            ].join("\n"),
        );
        const login = run(bin, ["bot", "login", "--config", cfg, "--password-stdin"], env, `${pusher.password}\n`);
        assert.equal(login.code, 0, `axon bot login: ${login.out}`);
        let log = "";
        bot = spawn(bin, ["bot", "--config", cfg], { stdio: ["ignore", "pipe", "pipe"] });
        bot.stdout.on("data", (c) => (log += c));
        bot.stderr.on("data", (c) => (log += c));
        await waitUntil(() => log.includes("axon bot running"), () => `the bot starts (log: ${log})`, { timeout: 30000 });
        await waitUntil(async () => {
            const m = a1.room(roomId)?.getMember(pusher.userId);
            return m?.membership === "join" && (await a1.client.getCrypto().getUserDeviceInfo([pusher.userId], true)).get(pusher.userId)?.size >= 2;
        }, "alice sees the bot's second device");
        await a1.client.sendTextMessage(roomId, "!web1 echo from-js");
        const reply = await decrypted(a1, roomId, (e) => e.getSender() === pusher.userId && e.getContent().body?.includes("```\nfrom-js\n```"), "the bot's reply");
        assert.equal(reply.getWireType(), "m.room.encrypted");
        assert.ok(reply.getContent()["m.relates_to"]?.["m.in_reply_to"], "a reply to the command");
    });
});
