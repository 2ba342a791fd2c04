using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Security;

namespace CrmEngine.Webhooks;

/// <summary>
/// What one subscription may receive, decided at fan-out time from the access model as it is then: the subscribing
/// user's read filter per entity (the owner as of the change decides) and field mask (hidden fields leave <c>data</c>).
/// <see cref="Refusal"/> is set when the user cannot receive anything (deactivated, unknown): each matching change is
/// then recorded as a skipped delivery with that reason and no data.
/// </summary>
internal sealed class SubscriberAccess
{
    private readonly AccessContext? _context;
    private readonly Dictionary<string, (QueryFilter Filter, FieldMask Mask)> _byEntity = new(StringComparer.OrdinalIgnoreCase);

    private SubscriberAccess(AccessContext? context, string? refusal)
    {
        _context = context;
        Refusal = refusal;
    }

    /// <summary>Everything (no access model, or a subscription without a user on a store whose model has no <c>sys-api</c>).</summary>
    public static SubscriberAccess Everything { get; } = new(null, null);

    public string? Refusal { get; }

    /// <summary>
    /// The access of <paramref name="user"/> (null: the subscription was made before subscriptions had users, or by an
    /// API key without a user; it acts as <c>sys-api</c> when that user exists, else it receives everything as before).
    /// </summary>
    public static async Task<SubscriberAccess> ForAsync(SecurityDirectory? directory, string? user, CancellationToken cancellationToken)
    {
        if (directory is null)
        {
            return user is null ? Everything : new SubscriberAccess(null, $"user '{user}' cannot be checked: the access model is not available in this engine");
        }

        var snapshot = await directory.SnapshotAsync(cancellationToken).ConfigureAwait(false);
        if (user is null)
        {
            if (!snapshot.Users.ContainsKey(SecurityAdministration.SystemUsers.Api))
            {
                return Everything;
            }

            user = SecurityAdministration.SystemUsers.Api;
        }

        var context = await new SecurityAdministration(directory).ContextForAsync(user, null, cancellationToken).ConfigureAwait(false);
        var refusal = !snapshot.Users.TryGetValue(user, out var u) ? $"there is no user '{user}'"
            : u.Deactivated ? $"user '{user}' is deactivated"
            : null;
        return new SubscriberAccess(context, refusal);
    }

    /// <summary>
    /// May the user read this record, as its stored <paramref name="image"/> was at the change? The owner is read as the
    /// access model reads it everywhere (<see cref="SecuritySnapshot.RecordOf"/>): a plugin entity's declared owner field,
    /// else <c>owner</c>. A consent entry has no owner: besides <c>consent:read</c> the user must read the entry's
    /// customer (the rule of the API and of write enforcement), judged by <paramref name="customerImage"/> (the customer
    /// as of the change); an entry whose customer is not known is for those who read every customer.
    /// </summary>
    public bool MayRead(string entity, string entityId, JsonObject? image, Func<string, JsonObject?> customerImage)
    {
        if (_context is null)
        {
            return true;
        }

        if (!For(entity).Filter.Matches(entityId, image is null ? null : _context.Snapshot.RecordOf(entity, entityId, image).Owner))
        {
            return false;
        }

        if (!string.Equals(entity, EntityNames.Consent, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        var customers = For(EntityNames.Customer).Filter;
        if (customers.All)
        {
            return true;
        }

        var customerId = image?.FirstOrDefault(p => string.Equals(p.Key, "customerId", StringComparison.OrdinalIgnoreCase)).Value is JsonValue v
                         && v.TryGetValue<string>(out var id) && id.Length > 0 ? id : null;
        return customerId is not null && customerImage(customerId) is { } customer
               && customers.Matches(customerId, _context.Snapshot.RecordOf(EntityNames.Customer, customerId, customer).Owner);
    }

    /// <summary>A copy of <paramref name="data"/> without the fields hidden from the user (the same node when nothing is hidden).</summary>
    public JsonNode? Mask(string entity, JsonNode? data)
    {
        if (_context is null || data is not JsonObject obj)
        {
            return data;
        }

        var mask = For(entity).Mask;
        return mask.Hidden.Count == 0 ? data : mask.Apply((JsonObject)obj.DeepClone());
    }

    private (QueryFilter Filter, FieldMask Mask) For(string entity)
    {
        if (!_byEntity.TryGetValue(entity, out var pair))
        {
            pair = (_context!.Filter(entity, Privilege.Read), _context.Fields(entity));
            _byEntity[entity] = pair;
        }

        return pair;
    }
}
