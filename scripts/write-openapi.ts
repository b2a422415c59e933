/** Writes docs/openapi.json from the admin API's operation list (`npm run openapi`). A test checks it is current. */
import { writeFileSync } from 'node:fs';
import { buildOpenApi } from '../src/http/routes/admin/openapi.js';
import '../src/http/routes/admin/all-routes.js';

writeFileSync(new URL('../docs/openapi.json', import.meta.url), `${JSON.stringify(buildOpenApi('https://sso.example.com'), null, 2)}\n`);
console.log('docs/openapi.json written');
