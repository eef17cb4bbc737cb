// Read receipts and read markers: what Element sends as the user reads.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { findRemoteEvent, sharedRoom, User, waitUntil } from "../lib/harness.js";
import { ReceiptType, RoomEvent } from "matrix-js-sdk";

const T = { timeout: 60000 };

/** The receipts of a type for a user found in the raw /sync responses of a device. */
function rawReceipts(device, roomId, userId, type = "m.read") {
    const out = [];
    for (const { body } of device.rec.syncs) {
        for (const ev of body.rooms?.join?.[roomId]?.ephemeral?.events ?? []) {
            if (ev.type !== "m.receipt") continue;
            for (const [eventId, byType] of Object.entries(ev.content ?? {})) {
                const r = byType?.[type]?.[userId];
                if (r) out.push({ eventId, ...r });
            }
        }
    }
    return out;
}

describe("read receipts", () => {
    let alice, bob, a, b, roomId;
    before(async () => {
        alice = await User.register("rr-alice");
        bob = await User.register("rr-bob");
        a = await alice.startDevice();
        b = await bob.startDevice();
        roomId = await sharedRoom(a, [b]);
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("bob's sendReadReceipt reaches alice's room receipts through sync", T, async () => {
        const { event_id: eventId } = await a.client.sendTextMessage(roomId, "please read me");
        const ev = await waitUntil(() => findRemoteEvent(b.room(roomId), eventId), "bob receives the message", {
            device: b,
        });

        let receiptEvents = 0;
        a.client.on(RoomEvent.Receipt, (_ev, room) => {
            if (room.roomId === roomId) receiptEvents++;
        });
        const before = Date.now();
        await b.client.sendReadReceipt(ev, ReceiptType.Read);

        const aRoom = a.room(roomId);
        await waitUntil(
            () => aRoom.getReadReceiptForUserId(bob.userId, true, ReceiptType.Read)?.eventId === eventId,
            () =>
                `alice's room has bob's m.read receipt on ${eventId} (has ${JSON.stringify(
                    aRoom.getReadReceiptForUserId(bob.userId, true, ReceiptType.Read),
                )})`,
            { device: a },
        );
        assert.ok(receiptEvents > 0, "Room.receipt was emitted on alice's client");
        assert.ok(aRoom.getUsersReadUpTo(aRoom.findEventById(eventId)).includes(bob.userId), "getUsersReadUpTo lists bob");

        const raw = rawReceipts(a, roomId, bob.userId).filter((r) => r.eventId === eventId);
        assert.ok(raw.length > 0, "alice's /sync carried an m.receipt ephemeral event for bob");
        assert.equal(typeof raw[0].ts, "number", "receipt ts is a number");
        assert.ok(raw[0].ts >= before - 60000, "receipt ts is recent (ms since epoch)");
    });

    it("read markers (m.fully_read + m.read, as Element sends them) reach both sides", T, async () => {
        const { event_id: eventId } = await a.client.sendTextMessage(roomId, "marker target");
        const ev = await waitUntil(() => findRemoteEvent(b.room(roomId), eventId), "bob receives the message", {
            device: b,
        });
        await b.client.setRoomReadMarkers(roomId, eventId, ev);

        await waitUntil(
            () => a.room(roomId).getReadReceiptForUserId(bob.userId, true, ReceiptType.Read)?.eventId === eventId,
            "alice sees bob's receipt sent through /read_markers",
            { device: a },
        );
        await waitUntil(
            () => b.room(roomId).getAccountData("m.fully_read")?.getContent().event_id === eventId,
            () =>
                `bob's room account data m.fully_read points at ${eventId} (is ${JSON.stringify(
                    b.room(roomId).getAccountData("m.fully_read")?.getContent(),
                )})`,
            { device: b },
        );
    });

    it("a private read receipt (m.read.private) is not shown to alice", T, async () => {
        const { event_id: publicId } = await a.client.sendTextMessage(roomId, "public receipt");
        const pub = await waitUntil(() => findRemoteEvent(b.room(roomId), publicId), "bob receives message", { device: b });
        await b.client.sendReadReceipt(pub, ReceiptType.Read);
        await waitUntil(
            () => a.room(roomId).getReadReceiptForUserId(bob.userId, true, ReceiptType.Read)?.eventId === publicId,
            "alice sees the public receipt",
            { device: a },
        );

        const { event_id: privateId } = await a.client.sendTextMessage(roomId, "private receipt");
        const priv = await waitUntil(() => findRemoteEvent(b.room(roomId), privateId), "bob receives message", {
            device: b,
        });
        await b.client.sendReadReceipt(priv, ReceiptType.ReadPrivate);
        // A public receipt sent after the private one: once alice has it, the private one
        // would have arrived too if the server leaked it.
        const { event_id: laterId } = await a.client.sendTextMessage(roomId, "after private");
        const later = await waitUntil(() => findRemoteEvent(b.room(roomId), laterId), "bob receives message", {
            device: b,
        });
        await b.client.sendReadReceipt(later, ReceiptType.Read);
        await waitUntil(
            () => a.room(roomId).getReadReceiptForUserId(bob.userId, true, ReceiptType.Read)?.eventId === laterId,
            "alice sees the later public receipt",
            { device: a },
        );
        const leaked = rawReceipts(a, roomId, bob.userId, "m.read.private");
        assert.deepEqual(leaked, [], "no m.read.private receipt of bob in alice's /sync");
    });
});
