<?php
// nodectl magento image: writes Magento's app/etc/env.php settings from the environment, and the
// PHP session handler settings (Redis) for mod_php. Run by the entrypoint as root at each start.
//
//   php write-env-php.php MAGENTO_ROOT SESSION_INI
//
// Keys already in env.php that the environment does not set are kept (the file is read, merged
// and written back atomically, mode 0640 root:www-data). Secrets come from NAME_FILE, NAME or
// /run/secrets/<name>; they are never printed.

declare(strict_types=1);

function fail(string $msg): never
{
    fwrite(STDERR, "magento-entrypoint: error: $msg\n");
    exit(1);
}
function env(string $name, string $default = ''): string
{
    $v = getenv($name);
    return ($v === false || $v === '') ? $default : $v;
}
function secret(string $name): string
{
    $file = env($name . '_FILE');
    $value = env($name);
    if ($file === '' && $value === '' && is_file('/run/secrets/' . strtolower($name))) {
        $file = '/run/secrets/' . strtolower($name);
    }
    if ($file !== '') {
        $v = @file_get_contents($file);
        if ($v === false) {
            fail("{$name}_FILE=$file: cannot read it");
        }
        return rtrim($v, "\r\n");
    }
    return $value;
}
// host_port("h:p" or "h", default port) -> [host, port]
function host_port(string $spec, string $name, string $defaultPort): array
{
    if (preg_match('/^\[([0-9a-fA-F:]+)\](?::(\d+))?$/', $spec, $m)) {
        return [$m[1], $m[2] ?? $defaultPort];
    }
    if (preg_match('/^([A-Za-z0-9.-]+)(?::(\d+))?$/', $spec, $m)) {
        return [$m[1], $m[2] ?? $defaultPort];
    }
    fail("$name=$spec: want HOST or HOST:PORT");
}
function write_atomic(string $path, string $content, int $mode, int $gid): void
{
    $tmp = $path . '.tmp.' . getmypid();
    if (@file_put_contents($tmp, $content) === false) {
        fail("cannot write $tmp");
    }
    chmod($tmp, $mode);
    chgrp($tmp, $gid);
    if (!rename($tmp, $path)) {
        @unlink($tmp);
        fail("cannot rename $tmp to $path");
    }
}

[$root, $sessionIni] = [$argv[1] ?? '/var/www/html', $argv[2] ?? '/run/nodectl/php-session.ini'];
$wwwGid = posix_getgrnam('www-data')['gid'] ?? 33;
$envPhp = "$root/app/etc/env.php";
$env = [];
if (is_file($envPhp)) {
    $env = include $envPhp;
    if (!is_array($env)) {
        fail("$envPhp does not return an array");
    }
}
$set = [];
$changed = [];

// Database: master, and optionally a read replica (Magento's slave_connection).
if (($dbHost = env('MAGENTO_DB_HOST')) !== '') {
    [$h, $p] = host_port($dbHost, 'MAGENTO_DB_HOST', env('MAGENTO_DB_PORT', '3306'));
    $conn = [
        'host' => "$h:$p",
        'dbname' => env('MAGENTO_DB_NAME', 'magento'),
        'username' => env('MAGENTO_DB_USER', 'magento'),
        'password' => secret('MAGENTO_DB_PASSWORD'),
        'model' => 'mysql4',
        'engine' => 'innodb',
        'initStatements' => 'SET NAMES utf8;',
        'active' => '1',
        'driver_options' => [1014 => false],
    ];
    if ($conn['password'] === '') {
        fail('MAGENTO_DB_HOST is set but there is no MAGENTO_DB_PASSWORD(_FILE) or /run/secrets/magento_db_password');
    }
    $set['db']['table_prefix'] = $env['db']['table_prefix'] ?? env('MAGENTO_DB_TABLE_PREFIX');
    $set['db']['connection']['default'] = $conn;
    $set['resource']['default_setup']['connection'] = 'default';
    $changed[] = "db $h:$p";
    if (($replica = env('MAGENTO_DB_REPLICA_HOST')) !== '') {
        [$rh, $rp] = host_port($replica, 'MAGENTO_DB_REPLICA_HOST', env('MAGENTO_DB_REPLICA_PORT', '3306'));
        $set['db']['slave_connection']['default'] = array_merge($conn, ['host' => "$rh:$rp"]);
        $changed[] = "db replica $rh:$rp";
    }
}

// Redis: Magento's sessions and caches, and PHP's own session handler (phpredis).
$sessionLines = "; written by the nodectl magento entrypoint at start\n";
if (($redisHost = env('MAGENTO_REDIS_HOST')) !== '') {
    [$h, $p] = host_port($redisHost, 'MAGENTO_REDIS_HOST', env('MAGENTO_REDIS_PORT', '6379'));
    $pw = secret('MAGENTO_REDIS_PASSWORD');
    $sessionDb = env('MAGENTO_REDIS_SESSION_DB', '2');
    $set['session'] = ['save' => 'redis', 'redis' => [
        'host' => $h, 'port' => $p, 'password' => $pw, 'timeout' => '2.5', 'persistent_identifier' => '',
        'database' => $sessionDb, 'compression_threshold' => '2048', 'compression_library' => 'gzip',
        'log_level' => '4', 'max_concurrency' => '20', 'break_after_frontend' => '5',
        'break_after_adminhtml' => '30', 'first_lifetime' => '600', 'bot_first_lifetime' => '60',
        'bot_lifetime' => '7200', 'disable_locking' => '0', 'min_lifetime' => '60', 'max_lifetime' => '2592000',
    ]];
    foreach (['default' => env('MAGENTO_REDIS_CACHE_DB', '0'), 'page_cache' => env('MAGENTO_REDIS_PAGE_CACHE_DB', '1')] as $fe => $db) {
        $set['cache']['frontend'][$fe] = [
            'backend' => 'Magento\\Framework\\Cache\\Backend\\Redis',
            'backend_options' => ['server' => $h, 'port' => $p, 'password' => $pw, 'database' => $db, 'compress_data' => '1'],
        ];
    }
    $query = http_build_query(array_filter(['auth' => $pw, 'database' => $sessionDb, 'timeout' => '2.5'], 'strlen'), '', '&', PHP_QUERY_RFC3986);
    $sessionLines .= "session.save_handler = redis\n";
    $sessionLines .= 'session.save_path = "' . addcslashes("tcp://$h:$p?$query", '"\\') . "\"\n";
    $changed[] = "redis $h:$p (sessions db $sessionDb)";
}

// Varnish: the hosts Magento sends PURGE requests to; full-page cache application = Varnish.
if (($varnish = env('MAGENTO_VARNISH_HOSTS')) !== '') {
    $hosts = [];
    foreach (preg_split('/[\s,]+/', $varnish, -1, PREG_SPLIT_NO_EMPTY) as $spec) {
        [$h, $p] = host_port($spec, 'MAGENTO_VARNISH_HOSTS', '80');
        $hosts[] = ['host' => $h, 'port' => $p];
    }
    $set['system']['default']['system']['full_page_cache']['caching_application'] = '2';
    $changed[] = 'varnish ' . $varnish;
}

if (($key = secret('MAGENTO_CRYPT_KEY')) !== '') {
    $set['crypt']['key'] = $key;
}
if (($mode = env('MAGENTO_MODE')) !== '') {
    if (!in_array($mode, ['production', 'developer', 'default'], true)) {
        fail("MAGENTO_MODE=$mode: want production, developer or default");
    }
    $set['MAGE_MODE'] = $mode;
}
if (($front = env('MAGENTO_ADMIN_FRONTNAME')) !== '') {
    $set['backend']['frontName'] = $front;
}
$set['x-frame-options'] = $env['x-frame-options'] ?? 'SAMEORIGIN';

$env = array_replace_recursive($env, $set);
if (isset($hosts)) {
    $env['http_cache_hosts'] = $hosts;   // a list: replaced, not merged
}

if (!is_dir("$root/app/etc")) {
    fail("$root/app/etc does not exist: is a Magento project in $root?");
}
write_atomic($envPhp, "<?php\nreturn " . var_export($env, true) . ";\n", 0640, $wwwGid);
if (!is_dir(dirname($sessionIni))) {
    mkdir(dirname($sessionIni), 0755, true);
}
write_atomic($sessionIni, $sessionLines, 0640, $wwwGid);
fwrite(STDERR, 'magento-entrypoint: env.php: ' . ($changed ? implode(', ', $changed) : 'no settings from the environment') . "\n");
