#!/usr/bin/env perl
# Writes a minimal ELF64 little-endian executable header for the script tests' cargo stand-in:
#   elf.pl OUT [static|interp|needed|pie] [MACHINE]
# static: one PT_LOAD (what a musl build looks like to deploy.sh's check); interp: plus PT_INTERP
# (a glibc build); needed: PT_DYNAMIC with a DT_NEEDED entry and no interpreter; pie: PT_DYNAMIC
# without DT_NEEDED (a static-pie build). MACHINE is e_machine (62 = x86-64, 183 = AArch64).
# It is not meant to run; it only has the shape deploy.sh inspects.
use strict;
use warnings;

my ($out, $kind, $machine) = @ARGV;
die "usage: elf.pl OUT [static|interp|needed|pie] [MACHINE]\n" unless defined $out;
$kind //= 'static';
$machine //= 62;
my @ph = ([1, 0, 0]);    # [p_type, p_offset, p_filesz]
my $data = '';
my $phnum = ($kind eq 'static') ? 1 : 2;
my $data_off = 64 + 56 * $phnum;
if ($kind eq 'interp') {
    $data = "/lib64/ld-linux-x86-64.so.2\0";
    push @ph, [3, $data_off, length $data];
} elsif ($kind eq 'needed' || $kind eq 'pie') {
    $data = pack('Q<Q<', 0x6ffffef5, 0) . ($kind eq 'needed' ? pack('Q<Q<', 1, 1) : '') . pack('Q<Q<', 0, 0);
    push @ph, [2, $data_off, length $data];
} elsif ($kind ne 'static') {
    die "elf.pl: unknown kind $kind\n";
}
my $header = "\x7fELF" . pack('CCCC', 2, 1, 1, 0) . ("\0" x 8)
    . pack('S<S<L<Q<Q<Q<L<S<S<S<S<S<S<', 2, $machine, 1, 0x401000, 64, 0, 0, 64, 56, $phnum, 64, 0, 0);
my $phs = join '', map { pack('L<L<Q<Q<Q<Q<Q<Q<', $_->[0], 5, $_->[1], 0, 0, $_->[2], $_->[2], 8) } @ph;
open my $fh, '>:raw', $out or die "elf.pl: cannot write $out: $!\n";
print {$fh} $header, $phs, $data;
close $fh or die "elf.pl: cannot write $out: $!\n";
