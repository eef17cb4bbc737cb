//go:build !goolm

package alerts

import (
	"context"

	"maunium.net/go/mautrix"
)

const cryptoSupported = false

func openCrypto(context.Context, *mautrix.Client, string, []byte) (roomCrypto, error) {
	return nil, ErrNoCrypto
}
