<?php
// nodectl magento image without an application: build it with
//   nodectl image build magento --arg project_dir=/path/to/magento-project
// or with composer create-project (--arg magento_version=2.4.7 --secret composer_auth=auth.json).
http_response_code(503);
header('Content-Type: text/plain; charset=utf-8');
echo "No Magento project in this image (built without --arg project_dir).\n";
