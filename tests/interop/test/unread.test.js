// Server-side notification counts, and the multi-device case: reading on one
// device clears the badge on the others (in an unencrypted room, where the SDK
// takes the server's counts as they are).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { findRemoteEvent, sharedRoom, User, waitUntil } from "../lib/harness.js";
import { NotificationCountType, ReceiptType } from "matrix-js-sdk";

const T = { timeout: 90000 };
const total = (d, roomId) => d.room(roomId)?.getUnreadNotificationCount(NotificationCountType.Total);
const highlight = (d, roomId) => d.room(roomId)?.getUnreadNotificationCount(NotificationCountType.Highlight);

/** unread_notifications of the room in the device's incremental syncs received after t. */
function rawCountsSince(device, roomId, t) {
    return device
        .syncsSince(t)
        .filter((s) => s.query.includes("since="))
        .map((s) => s.body.rooms?.join?.[roomId]?.unread_notifications)
        .filter(Boolean);
}

describe("unread notification counts", () => {
    let alice, bob, a, b1, b2, roomId;
    const sent = [];
    before(async () => {
        alice = await User.register("nc-alice");
        bob = await User.register("nc-bob");
        a = await alice.startDevice();
        b1 = await bob.startDevice({}, "bob-device-1");
        roomId = await sharedRoom(a, [b1]);
        const encrypted = b1.room(roomId).hasEncryptionStateEvent();
        assert.equal(encrypted, false, "the room must be unencrypted for server counts to be used");
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("three messages from alice give bob a notification count of 3", T, async () => {
        for (const body of ["one", "two", "three"]) {
            const { event_id } = await a.client.sendTextMessage(roomId, body);
            sent.push(event_id);
        }
        await waitUntil(() => findRemoteEvent(b1.room(roomId), sent[2]), "bob's first device receives the messages", {
            device: b1,
        });
        await waitUntil(
            () => total(b1, roomId) === 3,
            () => `bob device 1: notification count 3 (is ${total(b1, roomId)})`,
            { device: b1 },
        );
        assert.equal(highlight(b1, roomId), 0, "plain messages do not highlight");
    });

    it("bob's second device sees 3 in its initial sync", T, async () => {
        b2 = await bob.startDevice({}, "bob-device-2");
        assert.notEqual(b2.deviceId, b1.deviceId, "a second device");
        const initial = b2.rec.syncs[0].body.rooms?.join?.[roomId]?.unread_notifications;
        assert.equal(initial?.notification_count, 3, `initial /sync unread_notifications: ${JSON.stringify(initial)}`);
        assert.equal(total(b2, roomId), 3);
    });

    it("a read receipt sent by device 1 brings device 2's count to 0 through incremental sync", T, async () => {
        // Device 2 is up to date and long-polling: the change can only come from an incremental sync.
        await b2.longPolling();
        const t0 = Date.now();
        const latest = b1.room(roomId).findEventById(sent[2]);
        assert.ok(latest, "device 1 has the latest event");
        await b1.client.sendReadReceipt(latest, ReceiptType.Read);

        await waitUntil(
            () => total(b2, roomId) === 0,
            () =>
                `bob device 2: count drops to 0 after device 1's receipt on ${sent[2]} (is ${total(
                    b2,
                    roomId,
                )}; unread_notifications in device 2's incremental syncs since the receipt: ${JSON.stringify(
                    rawCountsSince(b2, roomId, t0),
                )})`,
            { device: b2 },
        );
        const raw = rawCountsSince(b2, roomId, t0);
        assert.ok(
            raw.some((c) => c.notification_count === 0),
            `an incremental /sync of device 2 carried notification_count 0: ${JSON.stringify(raw)}`,
        );
        await waitUntil(
            () => total(b1, roomId) === 0,
            () => `bob device 1: count drops to 0 too (is ${total(b1, roomId)})`,
            { device: b1 },
        );
    });

    it("counting starts again after the receipt, and a mention highlights", T, async () => {
        const { event_id: next } = await a.client.sendTextMessage(roomId, "another one");
        await waitUntil(() => findRemoteEvent(b2.room(roomId), next), "device 2 receives the message", { device: b2 });
        await waitUntil(
            () => total(b2, roomId) === 1,
            () => `device 2 count 1 after one new message (is ${total(b2, roomId)})`,
            { device: b2 },
        );

        // Element's mention: the pill's text in the body and the user in m.mentions.
        const { event_id: mention } = await a.client.sendMessage(roomId, {
            msgtype: "m.text",
            body: `${bob.localpart}: are you there?`,
            "m.mentions": { user_ids: [bob.userId] },
        });
        await waitUntil(() => findRemoteEvent(b2.room(roomId), mention), "device 2 receives the mention", { device: b2 });
        await waitUntil(
            () => total(b2, roomId) === 2 && highlight(b2, roomId) === 1,
            () => `device 2: total 2, highlight 1 (is ${total(b2, roomId)}, ${highlight(b2, roomId)})`,
            { device: b2 },
        );
    });

    it("alice's own messages do not count for alice", T, async () => {
        await waitUntil(() => a.room(roomId), "room", { device: a });
        assert.equal(total(a, roomId), 0, `alice's count in the room she wrote in (is ${total(a, roomId)})`);
    });
});
