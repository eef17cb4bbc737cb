// Loaded before matrix-js-sdk (via `node --import ./setup.js` and as the first
// import of lib/harness.js).
//
// matrix-js-sdk 43 targets Node >= 22 and calls Promise.withResolvers, which
// Node 20 lacks: without it, sends fail and background tasks die silently.
if (typeof Promise.withResolvers !== "function") {
    Object.defineProperty(Promise, "withResolvers", {
        configurable: true,
        writable: true,
        value: function withResolvers() {
            let resolve;
            let reject;
            const promise = new this((res, rej) => {
                resolve = res;
                reject = rej;
            });
            return { promise, resolve, reject };
        },
    });
}

// The SDK runs work in the background (sync retries, key uploads) whose
// rejections nobody awaits. By default Node ends the process on the first
// one; a test should fail on its own assertions instead.
if (!globalThis.__axonInteropRejectionHandler) {
    globalThis.__axonInteropRejectionHandler = true;
    process.on("unhandledRejection", (reason) => {
        if (process.env.INTEROP_DEBUG) {
            console.error("[interop] unhandled rejection:", reason);
        }
    });
}
