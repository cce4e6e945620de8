# Checks the IPv4 header checksum of an Ethernet frame.
# r1 = the frame, r2 = its length. Returns 0 when the header's checksum is
# intact, the one's-complement residue when it is not, and -1 for a frame
# that is too short, not IPv4, or has a bad header length.
mov %r6, %r1
jlt %r2, 34, bad              # 14 bytes of Ethernet + 20 of IPv4 at least
ldxh %r3, [%r6+12]            # EtherType, in network byte order
be16 %r3
jne %r3, 0x800, bad
ldxb %r4, [%r6+14]            # version and header length
mov %r5, %r4
rsh %r5, 4
jne %r5, 4, bad
and %r4, 0xf
lsh %r4, 2                    # header length in bytes
jlt %r4, 20, bad
mov %r7, %r4
add %r7, 14
jgt %r7, %r2, bad
mov %r0, 0                    # sum the header's 16-bit words
mov %r3, 0
sum:
mov %r8, %r6
add %r8, %r3
ldxh %r9, [%r8+14]
be16 %r9
add %r0, %r9
add %r3, 2
jlt %r3, %r4, sum
mov %r1, %r0
call local fold
exit
bad:
mov %r0, -1
exit

# fold(r1): add the carries back in and complement, as RFC 1071 does. The
# sum of at most 30 words is below 2^21, so two folds leave 16 bits: no
# loop (a "fold until no carry" loop is rejected by ember run's verifier,
# as by the kernel's: its abstract state repeats, so it cannot be proven to
# end).
fold:
mov %r0, %r1
rsh %r1, 16
and %r0, 0xffff
add %r0, %r1
mov %r1, %r0
rsh %r1, 16
and %r0, 0xffff
add %r0, %r1
xor %r0, 0xffff
exit
