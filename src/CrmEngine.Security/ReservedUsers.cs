namespace CrmEngine.Security;

/// <summary>
/// User ids the engine keeps for itself, and who may act through the API. A write is judged an engine write by how it
/// was made (its actor's form, <see cref="IsEngineActor"/>), never by the kind of a user a person could create: so no user
/// may take an id the engine writes as, and no API key or bearer token may act as a system user.
/// </summary>
public static class ReservedUsers
{
    /// <summary>
    /// Actor names the engine's own writers use without a <c>kind:</c> prefix (the mail outbox writes as <c>mail</c>, the
    /// unsubscribe page as <c>unsubscribe</c>; the others are kept free for the engine). Compared ignoring case. Prefixed
    /// actors (<c>plugin:</c>, <c>rule:</c>, <c>system:</c>, <c>job:</c>, <c>import:</c> ...) cannot clash: ids hold no ':'.
    /// </summary>
    public static readonly IReadOnlySet<string> EngineActors =
        new HashSet<string>(["mail", "unsubscribe", "scheduler", "system", "core", "rules", "engine"], StringComparer.OrdinalIgnoreCase);

    /// <summary>Ids starting with this belong to the engine's named system users.</summary>
    public const string SystemPrefix = "sys-";

    /// <summary>The engine's named system users and the kind each has (the shipped <c>security.json</c> creates them).</summary>
    public static readonly IReadOnlyList<(string Id, UserKind Kind)> SystemUsers =
    [
        (SecurityAdministration.SystemUsers.Rules, UserKind.System),
        (SecurityAdministration.SystemUsers.Plugins, UserKind.System),
        (SecurityAdministration.SystemUsers.Import, UserKind.System),
        (SecurityAdministration.SystemUsers.Scheduler, UserKind.System),
        (SecurityAdministration.SystemUsers.Mail, UserKind.System),
        (SecurityAdministration.SystemUsers.Engine, UserKind.System),
        // The user of API keys made without --user: an integration account, not an engine writer.
        (SecurityAdministration.SystemUsers.Api, UserKind.Integration),
    ];

    /// <summary>
    /// Is <paramref name="actor"/> one of the engine's writers (plugins, rules, the scheduler, imports, merges, mail ...)?
    /// Decided from the actor's form alone: a <c>kind:</c> prefix other than <c>apikey:</c> and <c>user:</c>, or a bare
    /// <see cref="EngineActors"/> name. Every other actor is a user id (or an API key) and is checked.
    /// </summary>
    public static bool IsEngineActor(string actor)
    {
        ArgumentNullException.ThrowIfNull(actor);
        var colon = actor.IndexOf(':', StringComparison.Ordinal);
        return colon < 0
            ? EngineActors.Contains(actor)
            : !actor.StartsWith("apikey:", StringComparison.Ordinal) && !actor.StartsWith("user:", StringComparison.Ordinal);
    }

    /// <summary>
    /// Null unless a user may not have <paramref name="id"/> with <paramref name="kind"/>: an actor name of the engine's
    /// writers (never a user), or <c>sys-*</c>, which only the engine's named system users may be, each with its kind.
    /// The text names the id.
    /// </summary>
    public static string? Problem(string id, UserKind kind)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (EngineActors.Contains(id))
        {
            return $"'{id}' is reserved: the engine's own writers act as '{id.ToLowerInvariant()}', so a user with this id would be taken for the engine (choose another id)";
        }

        if (!id.StartsWith(SystemPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        foreach (var (systemId, systemKind) in SystemUsers)
        {
            if (systemId == id)
            {
                return kind == systemKind ? null : $"'{id}' is reserved for the engine's system user, of kind {Name(systemKind)}";
            }
        }

        return $"'{id}' is reserved: ids starting with '{SystemPrefix}' belong to the engine's system users ({string.Join(", ", SystemUsers.Select(s => s.Id))})";
    }

    /// <summary>
    /// Why <paramref name="user"/> may not act through an API key or a bearer token, or null. System users are the engine's
    /// own; a user with a reserved id (a store from before ids were reserved may hold one) is kept with its history but
    /// cannot act, since its writes could not be told from the engine's.
    /// </summary>
    public static string? ActingRefusal(SecurityUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (user.Kind == UserKind.System)
        {
            return "is a system user (kind system): only the engine acts as it, never an API key or a bearer token";
        }

        return Problem(user.Id, user.Kind) is { } reserved ? $"has an id reserved for the engine ({reserved}), so it cannot act through the API" : null;
    }

    private static string Name(UserKind kind) => kind.ToString().ToLowerInvariant();
}
