// The DataSource the TypeORM CLI uses (`npm run typeorm -- migration:show`); the server builds the same one
// from the same config through createDataSource.
import { loadConfig } from './src/config';
import { createDataSource } from './src/storage/data-source';

export default createDataSource(loadConfig().database);
