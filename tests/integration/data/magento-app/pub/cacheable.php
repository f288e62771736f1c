<?php
// A page any visitor may share: no session, public Cache-Control. The body is unique per
// rendering, so a cached copy is recognisable.
header('Cache-Control: public, max-age=300');
header('Content-Type: text/plain');
echo 'rendered ', bin2hex(random_bytes(8)), "\n";
