// Simplified sliding sync (MSC4186) through matrix-js-sdk's SlidingSync and
// SlidingSyncSdk, set up the way Element Web's SlidingSyncManager does it: one
// room list by recency with a small timeline, a room subscription with a
// longer one for the open room, and the SDK's own extensions (to_device, e2ee,
// account_data, receipts, typing). The other side of each conversation is a
// plain /v3/sync client.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { SlidingSync, SlidingSyncEvent, SlidingSyncState } from "matrix-js-sdk/lib/sliding-sync.js";
import { SyncState } from "matrix-js-sdk";

import { BASE_URL, User, uniqueName, waitUntil, rawApi } from "../lib/harness.js";

const T = { timeout: 90000 };
const SS_PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

// The room list Element Web asks for (a subset of its required_state).
const LIST = {
    ranges: [[0, 19]],
    timeline_limit: 1,
    required_state: [
        ["m.room.create", ""],
        ["m.room.name", ""],
        ["m.room.avatar", ""],
        ["m.room.encryption", ""],
        ["m.room.join_rules", ""],
        ["m.room.power_levels", ""],
        ["m.room.member", "$ME"],
        ["m.room.member", "$LAZY"],
    ],
    filters: {},
};
// What Element Web subscribes the open room with.
const ROOM_SUB = { timeline_limit: 15, required_state: [["*", "*"]] };

const api = rawApi;

/** A device whose client syncs with SlidingSync instead of /v3/sync. */
async function slidingDevice(user, label, { crypto = false } = {}) {
    const d = await user.login(label);
    if (crypto) await d.client.initRustCrypto({ useIndexedDB: false });
    const ss = new SlidingSync(BASE_URL, new Map([["room_list", LIST]]), ROOM_SUB, d.client, 10000);
    d.ss = ss;
    d.responses = [];
    ss.on(SlidingSyncEvent.Lifecycle, (state, resp) => {
        if (state === SlidingSyncState.RequestFinished && resp) d.responses.push({ at: Date.now(), resp });
    });
    await d.start({ slidingSync: ss });
    return d;
}

/** The room IDs of the SDK's rooms, most recent activity (bump_stamp) first. */
function byActivity(d, roomIds) {
    return [...roomIds].sort((a, b) => (d.room(b)?.getBumpStamp() ?? 0) - (d.room(a)?.getBumpStamp() ?? 0));
}

describe("sliding sync (matrix-js-sdk SlidingSync)", () => {
    let alice, bob, a1, b1;
    const rooms = [];
    before(async () => {
        alice = await User.register("ssalice");
        bob = await User.register("ssbob");
        a1 = await alice.startDevice({}, "alice#1");
        const bobLogin = await bob.login("bob#setup");
        // Three rooms bob is in before his sliding sync client starts; the
        // first gets the newest message so it leads the list.
        for (let i = 0; i < 3; i++) {
            const { room_id: roomId } = await a1.client.createRoom({ preset: "private_chat", name: `ss room ${i}` });
            await a1.client.invite(roomId, bob.userId);
            const j = await api(bobLogin.accessToken, "POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});
            assert.equal(j.status, 200, j.text);
            for (let k = 0; k < 3; k++) await a1.client.sendTextMessage(roomId, `room ${i} message ${k}`);
            rooms.push(roomId);
        }
        await a1.client.sendTextMessage(rooms[0], "room 0 is the most recent");
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("logs in and gets the room list ordered by activity, with names and the latest event", T, async () => {
        b1 = await slidingDevice(bob, "bob#ss");
        assert.equal(b1.client.getSyncState(), SyncState.Syncing, "SlidingSyncSdk reached SYNCING after PREPARED");
        const first = b1.responses[0].resp;
        assert.equal(typeof first.pos, "string", "pos is a string");
        assert.equal(first.lists.room_list.count, 3, `list count: ${JSON.stringify(first.lists)}`);
        for (const [i, roomId] of rooms.entries()) {
            const room = b1.room(roomId);
            assert.ok(room, `the SDK has a Room for ${roomId}`);
            assert.equal(room.getMyMembership(), "join");
            assert.equal(room.name, `ss room ${i}`, "room name from required_state");
            assert.equal(room.currentState.getJoinedMemberCount(), 2, "joined_count");
            const tl = room.getLiveTimeline().getEvents();
            assert.ok(tl.length >= 1, "timeline_limit 1 gives the latest event");
            assert.ok(room.getLiveTimeline().getPaginationToken("b"), "a back-pagination token (prev_batch)");
        }
        assert.deepEqual(byActivity(b1, rooms), [rooms[0], rooms[2], rooms[1]], "bump_stamp orders rooms by latest message");
        assert.equal(b1.room(rooms[0]).getLiveTimeline().getEvents().at(-1).getContent().body, "room 0 is the most recent");
    });

    it("a subscribed room renders its timeline; older history paginates with prev_batch", T, async () => {
        b1.ss.modifyRoomSubscriptions(new Set([rooms[1]]));
        const room = b1.room(rooms[1]);
        const bodies = () =>
            room
                .getLiveTimeline()
                .getEvents()
                .filter((e) => e.getType() === "m.room.message")
                .map((e) => e.getContent().body);
        await waitUntil(() => bodies().length === 3, () => `the subscription's timeline (${JSON.stringify(bodies())})`, {
            device: b1,
        });
        assert.deepEqual(bodies(), ["room 1 message 0", "room 1 message 1", "room 1 message 2"], "in order, no duplicates");
        assert.ok(room.currentState.getStateEvents("m.room.create", ""), "the subscription's required_state ['*','*'] brings the create event");
        // /messages from the room's prev_batch reaches the room's start.
        await b1.client.scrollback(room, 30);
        assert.ok(
            room.getLiveTimeline().getEvents().some((e) => e.getType() === "m.room.create"),
            "back-pagination from prev_batch reached m.room.create",
        );
    });

    it("a new message arrives live and moves its room to the top", T, async () => {
        const t0 = Date.now();
        const { event_id: eventId } = await a1.client.sendTextMessage(rooms[2], "live one");
        const ev = await waitUntil(() => b1.room(rooms[2])?.findEventById(eventId), "the new message reaches bob", {
            device: b1,
        });
        assert.equal(ev.getContent().body, "live one");
        const carried = b1.responses.find((r) => r.at >= t0 && r.resp.rooms?.[rooms[2]]);
        assert.ok(carried.at - t0 < 5000, `the long-poll woke at once (${carried.at - t0} ms)`);
        const r = carried.resp.rooms[rooms[2]];
        assert.equal(r.initial, undefined, "an update is not initial");
        assert.equal(r.num_live, 1, "the new event is live");
        assert.equal(byActivity(b1, rooms)[0], rooms[2], "the room with the new message sorts first");
        assert.equal(b1.room(rooms[2]).getUnreadNotificationCount("total"), 4, "notification_count: bob has read none of the 4");
    });

    it("an invite appears with its stripped state, and can be joined", T, async () => {
        const name = uniqueName("invite");
        const { room_id: roomId } = await a1.client.createRoom({ preset: "private_chat", name, invite: [bob.userId] });
        const room = await waitUntil(() => b1.room(roomId), "the invite reaches bob", { device: b1 });
        assert.equal(room.getMyMembership(), "invite");
        assert.equal(room.name, name, "name from invite_state");
        assert.equal(room.getDMInviter?.() ?? alice.userId, alice.userId);
        await b1.client.joinRoom(roomId);
        await waitUntil(() => b1.room(roomId)?.getMyMembership() === "join", "bob's join comes back", { device: b1 });
        await a1.client.sendTextMessage(roomId, "welcome");
        await waitUntil(
            () => b1.room(roomId).getLiveTimeline().getEvents().some((e) => e.getContent().body === "welcome"),
            "a message after joining",
            { device: b1 },
        );
    });

    it("typing and receipts come through the extensions", T, async () => {
        await a1.client.sendTyping(rooms[0], true, 10000);
        await waitUntil(() => b1.room(rooms[0]).getMember(alice.userId)?.typing, "alice's typing reaches bob", { device: b1 });
        const last = a1.room(rooms[0]).getLiveTimeline().getEvents().at(-1);
        await a1.client.sendReadReceipt(last);
        await waitUntil(
            () => b1.room(rooms[0]).getEventReadUpTo(alice.userId) === last.getId(),
            "alice's read receipt reaches bob",
            { device: b1 },
        );
    });

    it("a restarted connection (unknown pos) starts over and keeps syncing", T, async () => {
        // Another device's sliding sync must not be able to use bob's pos.
        const pos = b1.responses.at(-1).resp.pos;
        const other = await bob.login("bob#other");
        const res = await api(other.accessToken, "POST", `${SS_PATH}?pos=${encodeURIComponent(pos)}`, { lists: {} });
        assert.equal(res.status, 400, res.text);
        assert.equal(res.json.errcode, "M_UNKNOWN_POS");
        // A new connection without a pos for the same device and conn_id
        // replaces the old one (as a server restart forgets it): the SDK's
        // long-poll is answered at once, its next pos is unknown, and it
        // starts over without one, getting its rooms again as initial.
        const before = b1.responses.length;
        const fresh = await api(b1.accessToken, "POST", `${SS_PATH}?timeout=0`, { lists: {} });
        assert.equal(fresh.status, 200, fresh.text);
        const again = await waitUntil(
            () => b1.responses.slice(before).find((r) => Object.values(r.resp.rooms ?? {}).some((x) => x.initial)),
            "the SDK's new connection gets its rooms as initial",
            { device: b1 },
        );
        assert.equal(again.resp.rooms[rooms[0]]?.initial, true, "the top room comes again");
        assert.ok(
            b1.rec.errors.some((e) => e.status === 400 && e.body.includes("M_UNKNOWN_POS")),
            "the SDK saw M_UNKNOWN_POS for its old pos",
        );
        assert.equal(b1.client.getSyncState(), SyncState.Syncing, "the client kept syncing");
        const { event_id: eventId } = await a1.client.sendTextMessage(rooms[1], "after the reset");
        await waitUntil(() => b1.room(rooms[1])?.findEventById(eventId), "messages still arrive", { device: b1 });
    });
});

describe("sliding sync with encryption (Rust crypto, e2ee + to_device extensions)", () => {
    let alice, bob, a1, b1, roomId;
    before(async () => {
        alice = await User.register("ssea");
        bob = await User.register("sseb");
        a1 = await alice.login("alice#crypto");
        await a1.client.initRustCrypto({ useIndexedDB: false });
        await a1.start();
        b1 = await slidingDevice(bob, "bob#ss-crypto", { crypto: true });
        // Both devices' keys must be on the server before the room is used.
        for (const d of [a1, b1]) {
            await waitUntil(
                async () => {
                    const q = await api(d.accessToken, "POST", "/_matrix/client/v3/keys/query", {
                        device_keys: { [d.userId]: [d.deviceId] },
                    });
                    return q.json?.device_keys?.[d.userId]?.[d.deviceId];
                },
                `${d.label} uploaded its device keys`,
                { device: d },
            );
        }
        ({ room_id: roomId } = await a1.client.createRoom({
            preset: "private_chat",
            invite: [bob.userId],
            initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
        }));
        await waitUntil(() => b1.room(roomId)?.getMyMembership() === "invite", "bob sees the invite", { device: b1 });
        await b1.client.joinRoom(roomId);
        await waitUntil(() => b1.room(roomId)?.getMyMembership() === "join", "bob joined", { device: b1 });
        await waitUntil(() => b1.room(roomId)?.hasEncryptionStateEvent(), "bob knows the room is encrypted", { device: b1 });
        await waitUntil(() => a1.room(roomId)?.getMember(bob.userId)?.membership === "join", "alice sees bob", { device: a1 });
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("the e2ee extension reports one-time key counts and the device uploads keys", T, async () => {
        const withCounts = b1.responses.find((r) => r.resp.extensions?.e2ee?.device_one_time_keys_count);
        assert.ok(withCounts, "an e2ee extension response with device_one_time_keys_count");
        const counts = await waitUntil(
            () => b1.responses.at(-1)?.resp.extensions?.e2ee?.device_one_time_keys_count?.signed_curve25519 > 0 &&
                b1.responses.at(-1).resp.extensions.e2ee,
            "the uploaded one-time keys are counted",
            { device: b1 },
        );
        assert.ok(Array.isArray(counts.device_unused_fallback_key_types), "device_unused_fallback_key_types is a list");
    });

    it("messages decrypt both ways (room keys over the to_device extension)", T, async () => {
        await a1.client.sendTextMessage(roomId, "secret for bob");
        const ev = await waitUntil(
            async () => {
                for (const e of b1.room(roomId).getLiveTimeline().getEvents()) {
                    if (!e.isEncrypted()) continue;
                    await b1.client.decryptEventIfNeeded(e);
                    if (e.getContent().body === "secret for bob") return e;
                }
                return null;
            },
            "bob decrypts alice's message",
            { device: b1 },
        );
        assert.equal(ev.getWireType(), "m.room.encrypted");
        assert.ok(
            b1.responses.some((r) => r.resp.extensions?.to_device?.events?.some((e) => e.type === "m.room.encrypted")),
            "the room key came as an encrypted to-device message",
        );
        await b1.client.sendTextMessage(roomId, "secret for alice");
        await waitUntil(
            async () => {
                for (const e of a1.room(roomId).getLiveTimeline().getEvents()) {
                    if (!e.isEncrypted()) continue;
                    await a1.client.decryptEventIfNeeded(e);
                    if (e.getContent().body === "secret for alice") return true;
                }
                return false;
            },
            "alice decrypts bob's message (bob's client learnt alice's devices)",
            { device: a1 },
        );
    });

    it("a new device of alice shows up in device_lists.changed", T, async () => {
        const t0 = Date.now();
        const a2 = await alice.login("alice#2");
        await a2.client.initRustCrypto({ useIndexedDB: false });
        await a2.start();
        await waitUntil(
            () => b1.responses.some((r) => r.at >= t0 && r.resp.extensions?.e2ee?.device_lists?.changed?.includes(alice.userId)),
            "alice's new device is reported to bob",
            { device: b1 },
        );
        await waitUntil(
            async () => (await b1.client.getCrypto().getUserDeviceInfo([alice.userId])).get(alice.userId)?.has(a2.deviceId),
            "bob's crypto knows alice's new device",
            { device: b1 },
        );
    });
});
