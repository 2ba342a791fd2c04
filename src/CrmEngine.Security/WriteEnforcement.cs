using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.Security;

/// <summary>
/// Enforces record privileges on the write path for every write whose actor is a user id (a store from
/// <c>IStoreProvider.ForActor(userId)</c>): customers, activities and orders. A Validate handler refuses a create,
/// write, delete or reassignment the user's roles (and shares) do not reach, and a change of a protected field the user
/// may not write, with <see cref="AccessField"/> as the field and the decision (naming the missing privilege) as the
/// message; nothing is stored. A PreOperation handler makes the creating user the owner of a record created without
/// one. Writes by other actors (<c>plugin:</c>, <c>rule:</c>, <c>apikey:</c>, <c>system:</c> ...) pass unchanged: they
/// are the engine's own writers, mapped to named system users for audit (see docs/security.md).
/// </summary>
public sealed class WriteEnforcement : IHostedService
{
    /// <summary>The field name of an access refusal in a <see cref="ValidationException"/> (the API answers it with 403).</summary>
    public const string AccessField = "access";

    private const string HandlerOwner = "security";

    private readonly IWriteHandlerRegistry _registry;
    private readonly SecurityDirectory _directory;
    private readonly List<IDisposable> _registrations = [];

    public WriteEnforcement(IWriteHandlerRegistry registry, SecurityDirectory directory)
    {
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _directory = directory ?? throw new ArgumentNullException(nameof(directory));
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Register<Customer>(EntityNames.Customer, c => c.Owner, (c, o) => c.Owner = o);
        Register<Activity>(EntityNames.Activity, a => a.Owner, (a, o) => a.Owner = o);
        Register<Order>(EntityNames.Order, o => o.Owner, (o, v) => o.Owner = v);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _registrations.ForEach(r => r.Dispose());
        _registrations.Clear();
        return Task.CompletedTask;
    }

    private void Register<T>(string entity, Func<T, string?> owner, Action<T, string> setOwner) where T : class, IEntity
    {
        // Order -1000: before other handlers, so a refused write costs nobody else's work.
        _registrations.Add(_registry.Register(HandlerRegistration.Create<T>(HandlerOwner, entity, PipelineStage.Validate, -1000,
            $"security:check-{entity}", (e, ct) => CheckAsync(e, owner, ct))));
        _registrations.Add(_registry.Register(HandlerRegistration.Create<T>(HandlerOwner, entity, PipelineStage.PreOperation, -1000,
            $"security:owner-{entity}", async (e, ct) =>
            {
                if (e.Operation == ChangeOperation.Create && e.After is { } after && owner(after) is null && (await _directory.SnapshotAsync(ct)).Users.ContainsKey(e.Actor))
                {
                    setOwner(after, e.Actor);
                }
            })));
    }

    private async Task CheckAsync<T>(WriteEvent<T> e, Func<T, string?> owner, CancellationToken ct) where T : class, IEntity
    {
        var snapshot = await _directory.SnapshotAsync(ct);
        if (!snapshot.Users.ContainsKey(e.Actor))
        {
            return;
        }

        var access = new AccessContext(snapshot, e.Actor, null);
        var decisions = new List<AccessDecision>();
        switch (e.Operation)
        {
            case ChangeOperation.Create:
                decisions.Add(access.CheckCreate(e.Entity, owner(e.After!) ?? e.Actor));
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

        foreach (var denied in decisions.Where(d => !d.Allowed))
        {
            e.Reject(AccessField, denied.ToString());
        }
    }
}
