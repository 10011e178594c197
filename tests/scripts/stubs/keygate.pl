#!/usr/bin/env perl
# A stand-in for the Functions front end's key check, for the deploy.sh tests (loopback only).
#
# Usage: keygate.pl KEY PORT_FILE LOG_FILE
# Listens on 127.0.0.1 at a free port, which it writes to PORT_FILE once it accepts connections.
#   GET  /          200, like the Functions host's home page
#   POST /api/ping  200 "ok" when the x-functions-key header equals KEY, else 401 with an empty
#                   body (an HTTP function with authLevel "function", as deployed)
# Every request is logged as one line: "METHOD PATH key=match|wrong|missing body=BODY".
# The key itself is never logged.
use strict;
use warnings;
use IO::Socket::INET;

my ($key, $port_file, $log_file) = @ARGV;
die "usage: keygate.pl KEY PORT_FILE LOG_FILE\n" unless defined $log_file;
my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16, ReuseAddr => 1)
  or die "keygate: cannot listen: $!\n";
open(my $pf, '>', "$port_file.tmp") or die; print $pf $server->sockport, "\n"; close $pf;
rename("$port_file.tmp", $port_file) or die;
$SIG{TERM} = sub { exit 0 };

while (my $c = $server->accept) {
  local $/ = "\r\n";
  my $request = <$c> // next;
  my ($method, $path) = split / /, $request;
  my %h;
  while (my $line = <$c>) {
    $line =~ s/\r\n$//;
    last if $line eq '';
    my ($k, $v) = split /:\s*/, $line, 2;
    $h{lc $k} = $v;
  }
  my $body = '';
  read($c, $body, $h{'content-length'}) if $h{'content-length'};
  my $seen = !exists $h{'x-functions-key'} ? 'missing' : $h{'x-functions-key'} eq $key ? 'match' : 'wrong';
  open(my $log, '>>', $log_file) or die; print $log "$method $path key=$seen body=$body\n"; close $log;
  my ($status, $text) = (404, '');
  if ($method eq 'GET' && $path eq '/') { ($status, $text) = (200, 'Your Functions 4.0 app is up and running') }
  elsif ($path =~ m{^/api/ping}i) { ($status, $text) = $seen eq 'match' ? (200, 'ok') : (401, '') }
  my $reason = { 200 => 'OK', 401 => 'Unauthorized', 404 => 'Not Found' }->{$status};
  print $c "HTTP/1.1 $status $reason\r\nContent-Type: text/plain\r\nContent-Length: " . length($text)
    . "\r\nConnection: close\r\n\r\n$text";
  close $c;
}
