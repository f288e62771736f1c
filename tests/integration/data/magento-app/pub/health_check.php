<?php
// Stand-in for Magento's pub/health_check.php (the stack's startup and readiness probes ask it):
// like Magento's, it answers 500 when the database named in app/etc/env.php cannot be queried or
// the Redis cache backend cannot be reached, and 200 with nothing in the body otherwise.
declare(strict_types=1);
header('Cache-Control: no-store');
try {
    $env = include __DIR__ . '/../app/etc/env.php';
    $c = $env['db']['connection']['default'];
    [$host, $port] = explode(':', $c['host']) + [1 => '3306'];
    $pdo = new PDO("mysql:host=$host;port=$port;dbname={$c['dbname']}", $c['username'], $c['password'],
        [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => 5]);
    $pdo->query('SELECT 1');
    $r = $env['cache']['frontend']['default']['backend_options'] ?? null;
    if ($r !== null) {
        $redis = new Redis();
        $redis->connect($r['server'], (int) $r['port'], 5);
        if (($r['password'] ?? '') !== '') {
            $redis->auth($r['password']);
        }
        $redis->ping();
    }
} catch (Throwable $e) {
    http_response_code(500);
    error_log('health_check: ' . $e->getMessage());
    exit(1);
}
