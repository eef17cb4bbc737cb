// Media: an avatar uploaded with matrix-js-sdk (uploadContent + setAvatarUrl)
// and downloaded by another user's client through authenticated media.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";

import { User } from "../lib/harness.js";

const T = { timeout: 60000 };

function crc32(buf) {
    let c = ~0;
    for (const b of buf) {
        c ^= b;
        for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c >>> 0;
}

function chunk(type, data) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
}

// A w x h RGB gradient PNG.
function makePNG(w, h) {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // RGB
    const raw = Buffer.alloc(h * (1 + 3 * w));
    for (let y = 0; y < h; y++) {
        const row = y * (1 + 3 * w);
        for (let x = 0; x < w; x++) {
            raw[row + 1 + 3 * x] = x & 255;
            raw[row + 2 + 3 * x] = y & 255;
            raw[row + 3 + 3 * x] = (x + y) & 255;
        }
    }
    const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    return Buffer.concat([sig, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

const pngSize = (buf) => ({ width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) });

describe("media: avatar upload and authenticated download", () => {
    let alice, bob, a, b;
    before(async () => {
        alice = await User.register("md-alice");
        bob = await User.register("md-bob");
        a = await alice.login();
        b = await bob.login();
    });
    after(() => {
        alice?.stopAll();
        bob?.stopAll();
    });

    it("uploadContent + setAvatarUrl, then bob downloads the avatar and a thumbnail", T, async () => {
        const png = makePNG(200, 150);
        const { content_uri } = await a.client.uploadContent(png, { type: "image/png", name: "avatar.png" });
        assert.match(content_uri, /^mxc:\/\/[^/]+\/[A-Za-z0-9_-]+$/);
        await a.client.setAvatarUrl(content_uri);

        const profile = await b.client.getProfileInfo(alice.userId);
        assert.equal(profile.avatar_url, content_uri);

        // The SDK builds the authenticated URL (/_matrix/client/v1/media/download).
        const url = b.client.mxcUrlToHttp(content_uri, undefined, undefined, undefined, false, true, true);
        assert.match(url, /\/_matrix\/client\/v1\/media\/download\//);
        const unauth = await fetch(url);
        assert.equal(unauth.status, 401, "authenticated media needs a token");
        const res = await fetch(url, { headers: { Authorization: `Bearer ${b.client.getAccessToken()}` } });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-type"), "image/png");
        assert.match(res.headers.get("content-disposition"), /^inline; filename=avatar\.png$/);
        assert.match(res.headers.get("content-security-policy"), /^sandbox;/);
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), png);

        // The avatar thumbnail Element asks for (96x96 crop).
        const thumbURL = b.client.mxcUrlToHttp(content_uri, 96, 96, "crop", false, true, true);
        assert.match(thumbURL, /\/_matrix\/client\/v1\/media\/thumbnail\//);
        const th = await fetch(thumbURL, { headers: { Authorization: `Bearer ${b.client.getAccessToken()}` } });
        assert.equal(th.status, 200);
        assert.equal(th.headers.get("content-type"), "image/png");
        assert.deepEqual(pngSize(Buffer.from(await th.arrayBuffer())), { width: 96, height: 96 });
    });
});
