// Package auth holds the security primitives the homeserver's login,
// registration and admin endpoints are built on: password hashing, token
// and identifier generation, and Synapse-compatible shared-secret
// registration. It deliberately contains no HTTP or storage code so that
// every piece can be tested in isolation and reused by several handlers.
package auth
