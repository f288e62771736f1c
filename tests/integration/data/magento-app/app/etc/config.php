<?php
// Magento keeps module configuration here; the stand-in project has none.
return ['modules' => []];
