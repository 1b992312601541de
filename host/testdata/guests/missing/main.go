//go:build wasip1

// Command missing reports the right ABI version but exports nothing else.
package main

//go:wasmexport wasmhost_abi_version
func abiVersion() int32 { return 1 }

func main() {}
