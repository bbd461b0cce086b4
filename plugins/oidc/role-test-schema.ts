import { ObjectName } from '../../nexus/policy/schema.js';
import { fail, z } from '../../nexus/schema.js';
import { ROLE_PERMISSIONS } from './schema.js';
import { MAX_TOKEN_BYTES } from './verify.js';

/** POST /v1/oidc/roles:test: a sample JWT, or claims under a named issuer (no signature then). */
export const RoleTestInput = z
  .strictObject({
    jwt: z.string().min(1).max(MAX_TOKEN_BYTES).optional().describe('a sample JWT from the CI platform: every token check is explained too'),
    issuer: ObjectName.optional().describe('with claims: the issuer whose roles to test'),
    claims: z.record(z.string(), z.unknown()).optional().describe('with issuer: a token\'s claims, tested without a signature'),
    role: ObjectName.optional().describe('only this role (default: every role of the issuer)'),
  })
  .check((ctx) => {
    const b = ctx.value;
    if (b.jwt !== undefined && (b.claims !== undefined || b.issuer !== undefined)) fail(ctx, 'give either jwt, or issuer and claims', { path: ['jwt'] });
    else if (b.jwt === undefined && (b.claims === undefined || b.issuer === undefined)) fail(ctx, 'give either jwt, or issuer and claims', { path: ['claims'] });
  })
  .meta({ id: 'RoleTestInput' });

const Check = z.object({ check: z.string(), ok: z.boolean(), detail: z.string() });
const Binding = z.object({
  claim: z.string(),
  match: z.enum(['exact', 'glob']),
  expected: z.unknown(),
  actual: z.unknown().optional().describe("the token's value (absent from the token: absent here)"),
  ok: z.boolean(),
  why: z.string().optional(),
});

export const RoleTestResult = z
  .object({
    issuer: ObjectName.nullable().describe('the issuer the token or claims were tested under (null: iss names none)'),
    token: z
      .object({ accepted: z.boolean().describe('what the OIDC port decides for this token now'), reason: z.string().nullable().describe('its audit reason when refused'), checks: z.array(Check) })
      .optional()
      .describe('for a jwt only'),
    roles: z.array(
      z.object({
        role: ObjectName,
        matched: z.boolean(),
        bindings: z.array(Binding),
        grants: z.array(z.object({ path: z.string(), permissions: z.array(z.enum(ROLE_PERMISSIONS)) })).describe('the paths its templates expand to for these claims'),
        why: z.string().optional().describe('why it did not match'),
        warnings: z.array(z.string()).describe('the lint of role writes (e.g. a tenant bound only by a mutable name)'),
      }),
    ),
  })
  .meta({ id: 'RoleTestResult' });
export type RoleTestResult = z.output<typeof RoleTestResult>;
export type TokenExplanation = NonNullable<RoleTestResult['token']>;
export type TokenCheck = z.output<typeof Check>;
export type RoleVerdict = RoleTestResult['roles'][number];
export type BindingVerdict = z.output<typeof Binding>;
