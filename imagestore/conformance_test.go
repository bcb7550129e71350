package imagestore_test

import (
	"testing"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/imagestore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) imagestore.Interface { return newStore(t) })
}
