<?php
// Test page: a session counter stored by PHP's session handler (Redis, configured by the image's
// entrypoint), a query to the DB master and replica named in app/etc/env.php, PHP settings.
declare(strict_types=1);
header('Content-Type: application/json');
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$env = include __DIR__ . '/../app/etc/env.php';

function query(array $c, string $sql): array
{
    [$host, $port] = explode(':', $c['host']) + [1 => '3306'];
    try {
        $pdo = new PDO("mysql:host=$host;port=$port;dbname={$c['dbname']}", $c['username'], $c['password'],
            [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => 5]);
        return ['ok' => true, 'rows' => $pdo->query($sql)->fetchAll(PDO::FETCH_COLUMN)];
    } catch (Throwable $e) {
        return ['ok' => false, 'error' => $e->getMessage()];
    }
}
$sql = 'SELECT note FROM probe ORDER BY id';
echo json_encode([
    'sapi' => PHP_SAPI,
    'server' => $_SERVER['SERVER_SOFTWARE'] ?? '',
    'session_id' => session_id(),
    'session_handler' => ini_get('session.save_handler'),
    'n' => $_SESSION['n'],
    'master' => query($env['db']['connection']['default'], $sql),
    'replica' => isset($env['db']['slave_connection']) ? query($env['db']['slave_connection']['default'], $sql) : null,
    'ini' => [
        'memory_limit' => ini_get('memory_limit'),
        'max_input_vars' => ini_get('max_input_vars'),
        'opcache.enable' => ini_get('opcache.enable'),
        'opcache.validate_timestamps' => ini_get('opcache.validate_timestamps'),
        'opcache_running' => function_exists('opcache_get_status') && is_array(@opcache_get_status(false)),
    ],
], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
