/**
 * @file spotdb/scope.h
 * @brief Acting for a user: tenant isolation enforced by the database.
 *
 * From migration 0003 every table has row-level security policies keyed
 * on an acting user, and the two views are `security_invoker`
 * (docs/multi-tenancy.md).  A handle with a scope names that user to the
 * server before each statement, or once per transaction: outside a
 * transaction the setting travels in the statement's own pipeline (no
 * extra round trip), so it is transaction-local and stays right behind a
 * transaction-mode pooler.
 *
 * What an acting user sees and may change follows `users.role`, read by
 * the server (a user who is inactive or unknown sees nothing):
 * - `admin`: every row of every table.
 * - `user`: their own users row (not its role or is_active), the accounts
 *   whose user_id is theirs, the instances and experiment logs under
 *   those accounts, and every model (read only).
 * - `lab`: the same, limited to accounts with environment_type "LAB"
 *   (PROD accounts are invisible and cannot be created or moved to), and
 *   may register and change models.
 *
 * A row the acting user may not see is not there for them: a get, update
 * or delete of it gives SPOTDB_ENOTFOUND, lists and counts leave it out.
 * So does a row they may read but not change: a `user` updating or
 * deleting a model, a non-admin deleting a user (themselves included).
 * A write whose result they may not have (an account for someone else, a
 * PROD account for a lab user, an instance under another's account, a
 * model created by a `user`, their own role changed) gives SPOTDB_EDENIED
 * and changes nothing.  Unique and foreign-key checks are not filtered:
 * SPOTDB_ECONFLICT on an account_id, instance_id or email tells that the
 * key exists in another tenant, and SPOTDB_EREFERENCE that a model is in
 * use.
 *
 * Roles (created by the migration): connect as a login role that is a
 * member of `spotdb_app` for scoped use; without a scope such a handle
 * sees no row at all.  Trusted services use a member of `spotdb_service`,
 * which without a scope sees and changes everything, and with one is held
 * to the acting user's rights.  A superuser or a BYPASSRLS role is never
 * held by the policies, so spotdb_set_scope() refuses it.
 *
 * Thread safety: a handle is used by one thread at a time; the scope is
 * part of the handle.  No global initialisation.
 */
#ifndef SPOTDB_SCOPE_H
#define SPOTDB_SCOPE_H

#include "db.h"

SPOTDB_BEGIN_DECLS

/**
 * Act as a user on this handle from now on, or stop (NULL or "").
 *
 * The first call on a handle checks, with one round trip, that the
 * database has migration 0003 and that the connection's role is held by
 * row-level security; later calls cost nothing outside a transaction.
 * Inside a transaction the new scope applies to the rest of it at once
 * (one round trip).  spotdb_pool_release() clears the scope.
 *
 * spotdb_user_authenticate() records a login as the user who logged in,
 * whatever the handle's scope, and leaves the scope as it was.
 *
 * @param db the handle.
 * @param user_id the acting user's users.id (a UUID), or NULL or "" for
 *        none.  Copied.
 * @return 0; SPOTDB_EINVAL when user_id is not a UUID, or when the
 *         connection's role bypasses row-level security (a superuser or
 *         BYPASSRLS: the scope would not be enforced); SPOTDB_ESCHEMA
 *         when the database lacks migration 0003; SPOTDB_ECONN and
 *         others from the round trip.  A refused user_id or role leaves
 *         the scope unchanged; a failure to send it inside a transaction
 *         aborts that transaction, and the handle acts as the new user
 *         from the next one.
 */
SPOTDB_API int spotdb_set_scope(spotdb_db *db, const char *user_id);

/**
 * The handle's acting user.
 *
 * @param db the handle (may be NULL).
 * @return the users.id set by spotdb_set_scope(), owned by the handle and
 *         valid until the next spotdb_set_scope() or spotdb_close(); NULL
 *         when the handle has no scope.
 */
SPOTDB_API const char *spotdb_scope(const spotdb_db *db);

SPOTDB_END_DECLS

#endif /* SPOTDB_SCOPE_H */
