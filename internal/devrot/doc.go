// Package devrot is device-certificate rotation over AWS IoT Jobs in the cloud: the two functions (Signer and
// Completion) that issue a new certificate from the device's CSR and retire the old one only after the new one has
// proven itself by a connection, and the rotation table they share. What travels between device and cloud is in
// package wire.
package devrot
