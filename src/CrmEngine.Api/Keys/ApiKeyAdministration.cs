using CrmEngine.Abstractions.Http;
using CrmEngine.Core;
using CrmEngine.Core.Storage;

namespace CrmEngine.Api.Keys;

/// <summary>
/// <c>crm apikeys create|list|revoke</c>: in the running engine (through the control channel, which is local
/// and owner-only, so the first key can be made without having one) or on the stopped database (<see cref="OpenOffline"/>).
/// </summary>
public sealed class ApiKeyAdministration : IDisposable
{
    private readonly ApiKeyStore _keys;
    private readonly CrmDatabase? _owned;

    internal ApiKeyAdministration(ApiKeyStore keys, CrmDatabase? owned = null)
    {
        _keys = keys;
        _owned = owned;
    }

    /// <summary>Opens the stopped engine's database (the caller checked nobody else has it open).</summary>
    public static ApiKeyAdministration OpenOffline(StoreOptions store, string? contentRoot)
    {
        ArgumentNullException.ThrowIfNull(store);
        var database = new CrmDatabase(store, TimeProvider.System, null, contentRoot);
        try
        {
            return new ApiKeyAdministration(new ApiKeyStore(database), database);
        }
        catch
        {
            database.Dispose();
            throw;
        }
    }

    /// <summary>Parses a scope name (read, write, admin) or throws naming the allowed values.</summary>
    public static ApiScope ParseScope(string value) =>
        Enum.TryParse<ApiScope>(value?.Trim(), ignoreCase: true, out var scope) && Enum.IsDefined(scope) && !int.TryParse(value, out _)
            ? scope
            : throw new ArgumentException($"--scope '{value}' is not a scope: use read, write or admin");

    public Task<CreatedApiKey> CreateAsync(string name, ApiScope scope, DateTimeOffset? expires, CancellationToken cancellationToken = default) =>
        _keys.CreateAsync(name, scope, expires, null, cancellationToken);

    /// <summary>
    /// Creates a key that acts as <paramref name="user"/> (null: the system user <c>sys-api</c>). The user must exist, be
    /// active and be a person or integration account (never a system user or a reserved id: only the engine acts as
    /// those); the key's scope can only narrow what the user's roles allow.
    /// </summary>
    public Task<CreatedApiKey> CreateAsync(string name, ApiScope scope, DateTimeOffset? expires, string? user, CancellationToken cancellationToken = default)
    {
        if (user is not null)
        {
            user = user.Trim();
            var found = _keys.FindUser(user);
            if (found is null)
            {
                throw new ArgumentException($"--user '{user}': there is no such user (crm users list shows them; crm security seed creates the shipped ones)");
            }

            if (found.Deactivated)
            {
                throw new ArgumentException($"--user '{user}' is deactivated: a key cannot act as them (crm users activate {user})");
            }

            if (CrmEngine.Security.ReservedUsers.ActingRefusal(found) is { } why)
            {
                throw new ArgumentException($"--user '{user}' {why} (make the key for a person or integration user)");
            }
        }

        return _keys.CreateAsync(name, scope, expires, user, cancellationToken);
    }

    public IReadOnlyList<ApiKeyInfo> List() => _keys.List();

    public Task<ApiKeyInfo?> RevokeAsync(string nameOrId, CancellationToken cancellationToken = default) =>
        _keys.RevokeAsync(nameOrId, cancellationToken);

    public void Dispose() => _owned?.Dispose();
}
