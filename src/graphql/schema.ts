import { builder } from './builder.ts';
import './types/errors.ts';
import './types/api-token.ts';
import './types/tenant.ts';
import './types/viewer.ts';
import './types/audit-log.ts';
import './types/event-type.ts';
import './types/webhook.ts';
import './types/delivery.ts';
import './types/event.ts';
import './types/inbound-source.ts';
import './types/inbound-request.ts';
import './types/flow.ts';
import './types/app.ts';

export const schema = builder.toSchema();
