package main

import "github.com/wasmhost/wasmhost/sdk/guest"

// Order is one order.
type Order struct {
	// ID identifies the order.
	ID  string `json:"id"`
	Qty int    `json:"qty"` // How many to ship.
	// Address is where to ship,
	// spread over two lines.
	//
	// Second paragraph.
	Address struct {
		// Street and number.
		Street string `json:"street"`
	} `json:"address"`
	Lines []struct {
		// SKU of the item.
		SKU string `json:"sku"`
	} `json:"lines"`
	Note, Memo string // Free text.
	Embedded
	undocumented int
}

type (
	// Embedded is promoted into Order.
	Embedded struct {
		// Extra is an extra field.
		Extra bool
	}

	// Page is generic.
	Page[T any] struct {
		// Items on this page.
		Items []T
	}
)

// NotAStruct has a doc but is not a struct.
type NotAStruct int

func init() {
	guest.Register(guest.Tool{Name: "x"}, func(*guest.Call, Order) (guest.Text, error) { return "", nil })
}

func main() {}
