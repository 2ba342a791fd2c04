using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.Security;

/// <summary>
/// Enforces record privileges on the write path for every write whose actor is a user id (a store from
/// <c>IStoreProvider.ForActor(userId)</c>, as the API does for a key with a user) or an API key without a user
/// (<c>apikey:&lt;name&gt;</c>, checked as <c>sys-api</c>): customers, activities, orders and products (no owner: root
/// unit, judged as the API judges them); consent entries by their own privilege and the readability of their customer. A Validate handler refuses
/// a create, write, delete or reassignment the user's roles (and shares) do not reach, and a change of a protected field
/// the user may not write, with <see cref="AccessField"/> as the field and the decision (naming the missing privilege)
/// as the message; nothing is stored. A PreOperation handler makes the creating user the owner of a record created
/// without one. Writes by the engine's own writers (<c>plugin:</c>, <c>rule:</c>, <c>system:</c>, <c>import:</c>,
/// <c>merge:</c>, <c>mail</c> ...) are not checked; they are mapped to named system users for audit (docs/security.md).
/// </summary>
/// <remarks>
/// Cheap by construction: which writes are checked is decided on the writer thread from the actor string alone
/// (<see cref="Checks"/>), so an engine write never enters the handlers (no thread hop, no image copy). That decision is
/// by how the write was made (the actor's form, <see cref="ReservedUsers.IsEngineActor"/>), never by the kind of a user:
/// no user may have an id the engine writes as, and a user of kind <c>system</c> writing under its own id is checked by
/// its roles like anyone else. An actor that is no user passes, as do all actors while the access model has no users.
/// </remarks>
public sealed class WriteEnforcement : IHostedService
{
    /// <summary>The field name of an access refusal in a <see cref="ValidationException"/> (the API answers it with 403).</summary>
    public const string AccessField = "access";

    private const string HandlerOwner = "security";
    private const string ApiKeyPrefix = "apikey:";
    private const string UserPrefix = "user:";

    private readonly IWriteHandlerRegistry _registry;
    private readonly SecurityDirectory _directory;
    private readonly IStoreProvider? _stores;
    private readonly List<IDisposable> _registrations = [];

    /// <param name="stores">Where the customer of a consent entry is read; without it consent entries are checked for their own privilege only.</param>
    public WriteEnforcement(IWriteHandlerRegistry registry, SecurityDirectory directory, IStoreProvider? stores = null)
    {
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _directory = directory ?? throw new ArgumentNullException(nameof(directory));
        _stores = stores;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Register<Customer>(EntityNames.Customer, c => c.Owner, (c, o) => c.Owner = o);
        Register<Activity>(EntityNames.Activity, a => a.Owner, (a, o) => a.Owner = o);
        Register<Order>(EntityNames.Order, o => o.Owner, (o, v) => o.Owner = v);
        // Products have no owner (root unit; roles grant them at depth all): the privilege alone decides, as in the API.
        Register<Product>(EntityNames.Product, _ => null, null);
        _registrations.Add(_registry.Register(HandlerRegistration.Create<ConsentEntry>(HandlerOwner, EntityNames.Consent, PipelineStage.Validate, -1000,
            $"security:check-{EntityNames.Consent}", CheckConsentAsync, (_, actor) => Checks(actor))));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _registrations.ForEach(r => r.Dispose());
        _registrations.Clear();
        return Task.CompletedTask;
    }

    /// <summary>
    /// Is a write by <paramref name="actor"/> checked? User ids (<c>anna</c>, <c>user:anna</c>) and API keys are; the
    /// engine's writers (<see cref="ReservedUsers.IsEngineActor"/>) are not. Errs on the side of checking: an actor without a
    /// prefix that is no user passes in the handler.
    /// </summary>
    public static bool Checks(string actor) => actor.Length > 0 && !ReservedUsers.IsEngineActor(actor);

    /// <summary>The user a checked actor acts as: itself (<c>user:</c> stripped), or <c>sys-api</c> for an API key without a user.</summary>
    internal static string UserOf(string actor) =>
        actor.StartsWith(ApiKeyPrefix, StringComparison.Ordinal) ? SecurityAdministration.SystemUsers.Api
        : actor.StartsWith(UserPrefix, StringComparison.Ordinal) ? actor[UserPrefix.Length..]
        : actor;

    /// <param name="setOwner">Makes the creating user the owner; null for an entity without owner.</param>
    private void Register<T>(string entity, Func<T, string?> owner, Action<T, string>? setOwner) where T : class, IEntity
    {
        // Order -1000: before other handlers, so a refused write costs nobody else's work.
        _registrations.Add(_registry.Register(HandlerRegistration.Create<T>(HandlerOwner, entity, PipelineStage.Validate, -1000,
            $"security:check-{entity}", (e, ct) => CheckAsync(e, owner, ct), (_, actor) => Checks(actor))));
        if (setOwner is null)
        {
            return;
        }

        _registrations.Add(_registry.Register(HandlerRegistration.Create<T>(HandlerOwner, entity, PipelineStage.PreOperation, -1000,
            $"security:owner-{entity}", async (e, ct) =>
            {
                // Only a person or integration user becomes owner; a key without a user leaves the record unowned, as before.
                if (e.After is { } after && owner(after) is null && (await _directory.SnapshotAsync(ct)).Users.ContainsKey(UserOf(e.Actor)))
                {
                    setOwner(after, UserOf(e.Actor));
                }
            }, (operation, actor) => operation == ChangeOperation.Create && Checks(actor) && !actor.StartsWith(ApiKeyPrefix, StringComparison.Ordinal))));
    }

    /// <summary>The access of the user a checked actor acts as, or null when nothing is to be checked.</summary>
    private async Task<AccessContext?> AccessOfAsync(string actor, CancellationToken ct)
    {
        var snapshot = await _directory.SnapshotAsync(ct);
        var userId = UserOf(actor);
        // Not a user (no access model yet, or an actor nobody is): nothing to check. A user of any kind is checked by its
        // roles: engine writers never get here (Checks), so being of kind system exempts nothing.
        return snapshot.Users.ContainsKey(userId) ? new AccessContext(snapshot, userId, null) : null;
    }

    private static void Reject<T>(WriteEvent<T> e, IEnumerable<AccessDecision> decisions) where T : class, IEntity
    {
        foreach (var denied in decisions.Where(d => !d.Allowed))
        {
            // A sentence: callers append to it ("... Nothing was stored.").
            var text = denied.ToString();
            e.Reject(AccessField, text.EndsWith('.') ? text : text + ".");
        }
    }

    /// <summary>
    /// A consent entry has no owner (root unit): its own privilege (<c>consent:create|write|delete</c>), and the customer
    /// it belongs to (before and after) must be readable by the user — the same rule as the API, so no store path lets a
    /// user add to or withdraw from the ledger of a customer it cannot see.
    /// </summary>
    private async Task CheckConsentAsync(WriteEvent<ConsentEntry> e, CancellationToken ct)
    {
        if (await AccessOfAsync(e.Actor, ct) is not { } access)
        {
            return;
        }

        var decisions = new List<AccessDecision>
        {
            e.Operation == ChangeOperation.Create
                ? access.CheckCreate(e.Entity, null)
                : access.Check(e.Operation == ChangeOperation.Delete ? Privilege.Delete : Privilege.Write, new RecordRef(e.Entity, e.EntityId, null)),
        };
        var store = _stores?.ForActor(e.Actor);
        foreach (var customerId in new[] { e.Before?.CustomerId, e.After?.CustomerId }.Where(c => !string.IsNullOrEmpty(c)).Distinct(StringComparer.Ordinal))
        {
            // A customer that does not exist is not the access model's business (nothing to hide).
            if (store is not null && await store.Customers.GetAsync(customerId!, ct) is { } customer)
            {
                decisions.Add(access.Check(Privilege.Read, new RecordRef(EntityNames.Customer, customer.Id, customer.Owner)));
            }
        }

        Reject(e, decisions);
    }

    private async Task CheckAsync<T>(WriteEvent<T> e, Func<T, string?> owner, CancellationToken ct) where T : class, IEntity
    {
        if (await AccessOfAsync(e.Actor, ct) is not { } access)
        {
            return;
        }

        var userId = access.UserId;
        var decisions = new List<AccessDecision>();
        switch (e.Operation)
        {
            case ChangeOperation.Create:
                decisions.Add(access.CheckCreate(e.Entity, owner(e.After!) ?? userId));
                decisions.Add(access.Fields(e.Entity).CheckWrite<T>(null, e.After!));
                break;
            case ChangeOperation.Update:
                var before = e.Before!;
                decisions.Add(access.Check(Privilege.Write, new RecordRef(e.Entity, e.EntityId, owner(before))));
                if (owner(before) != owner(e.After!))
                {
                    decisions.Add(access.Check(Privilege.Assign, new RecordRef(e.Entity, e.EntityId, owner(before))));
                }

                decisions.Add(access.Fields(e.Entity).CheckWrite(before, e.After!));
                break;
            case ChangeOperation.Delete:
                decisions.Add(access.Check(Privilege.Delete, new RecordRef(e.Entity, e.EntityId, e.Before is null ? null : owner(e.Before))));
                break;
        }

        Reject(e, decisions);
    }
}
