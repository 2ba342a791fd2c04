using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Security;

namespace CrmEngine.DataExchange.Duplicates;

/// <summary>
/// Which duplicates a user may be told about (issue #9): a duplicate rule compares a new card with every stored one, but a
/// message or a <c>possibleDuplicateOf</c> mark may name only customers the acting user may read. A match on a customer
/// they may not read is either left out (Warn) or refused with <see cref="Neutral"/>, which names no id, name or value.
/// </summary>
internal static class DuplicateAccess
{
    private const string ApiKeyPrefix = "apikey:";

    /// <summary>
    /// The access of the user a write acts as (a user id, or <c>sys-api</c> for an API key without a user), as write
    /// enforcement judges it; null for the engine's own writers, system users, or when there is no access model.
    /// </summary>
    public static async Task<AccessContext?> OfActorAsync(SecurityDirectory? directory, string actor, CancellationToken ct)
    {
        if (directory is null || !WriteEnforcement.Checks(actor))
        {
            return null;
        }

        var snapshot = await directory.SnapshotAsync(ct);
        var userId = actor.StartsWith(ApiKeyPrefix, StringComparison.Ordinal) ? SecurityAdministration.SystemUsers.Api : actor;
        if (!snapshot.Users.TryGetValue(userId, out var user) || user.Kind == UserKind.System)
        {
            return null;
        }

        var access = AccessContext.ForCaller(snapshot, userId, null);
        return access.Unrestricted ? null : access;
    }

    /// <summary>May <paramref name="access"/> read <paramref name="customer"/>? Null access (the engine, the operator) reads everything.</summary>
    public static bool Readable(AccessContext? access, Customer customer) =>
        access is null || access.Check(Privilege.Read, new RecordRef(EntityNames.Customer, customer.Id, customer.Owner)).Allowed;

    /// <summary>Reads the matched customers and keeps those <paramref name="access"/> may read.</summary>
    public static async Task<(List<DuplicateMatch> Readable, List<DuplicateMatch> Hidden)> SplitAsync(AccessContext? access, ICrmStore store,
        IReadOnlyList<DuplicateMatch> matches, CancellationToken ct)
    {
        if (access is null)
        {
            return ([.. matches], []);
        }

        var readable = new List<DuplicateMatch>();
        var hidden = new List<DuplicateMatch>();
        foreach (var m in matches)
        {
            // A match that is gone meanwhile counts as hidden: nothing about it is shown.
            (await store.Customers.GetAsync(m.CustomerId, ct) is { } c && Readable(access, c) ? readable : hidden).Add(m);
        }

        return (readable, hidden);
    }

    /// <summary>
    /// The refusal of a write that a rule matches with a customer the user may not read: the rule's field and kind, no id,
    /// name or stored value.
    /// </summary>
    public static string Neutral(string userId, string rule) =>
        $"conflicts with a customer that user '{userId}' may not read ({RuleText(rule)})";

    private static string RuleText(string rule) => rule switch
    {
        DuplicateMatch.EmailRule => "same e-mail",
        DuplicateMatch.PhoneRule => "same phone",
        _ => "similar name at the same postcode or city",
    };
}
