using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Webhooks;

/// <summary>
/// Event names (<c>customer.created</c>, <c>sales_leads.deleted</c>) and the patterns a subscription lists:
/// <c>*</c>, <c>&lt;entity&gt;.*</c>, <c>*.&lt;operation&gt;</c> or one exact event. Entity names are compared ignoring case,
/// as the store compares collection names.
/// </summary>
internal static class WebhookEvents
{
    private static readonly string[] CoreEntities =
        [EntityNames.Customer, EntityNames.Activity, EntityNames.Order, EntityNames.Product, EntityNames.Consent];

    private static readonly string[] Operations = ["created", "updated", "deleted"];

    public static string OperationName(ChangeOperation operation) => operation switch
    {
        ChangeOperation.Create => "created",
        ChangeOperation.Update => "updated",
        ChangeOperation.Delete => "deleted",
        _ => throw new ArgumentOutOfRangeException(nameof(operation)),
    };

    public static string EventName(string entity, ChangeOperation operation) => entity + "." + OperationName(operation);

    /// <summary>Null when <paramref name="pattern"/> is valid, else why not (for a problem detail).</summary>
    public static string? Validate(string pattern)
    {
        if (pattern == "*")
        {
            return null;
        }

        // Split at the LAST dot: plugin ids may contain dots (crm.sales_leads.created).
        var dot = pattern.LastIndexOf('.');
        if (dot <= 0 || dot == pattern.Length - 1)
        {
            return $"'{pattern}' is not an event pattern; use '*', '<entity>.<operation>', '<entity>.*' or '*.<operation>' (for example 'customer.created').";
        }

        var entity = pattern[..dot];
        var operation = pattern[(dot + 1)..];
        if (operation != "*" && !Operations.Contains(operation, StringComparer.Ordinal))
        {
            return $"'{pattern}': unknown operation '{operation}' (use created, updated, deleted or *).";
        }

        if (entity == "*" || CoreEntities.Contains(entity, StringComparer.OrdinalIgnoreCase))
        {
            return null;
        }

        // Plugin collections are named <pluginId>_<name>; anything else is most likely a typo of a core entity.
        if (entity.Contains('_', StringComparison.Ordinal) && entity.All(c => char.IsLetterOrDigit(c) || c is '_' or '-' or '.'))
        {
            return null;
        }

        return $"'{pattern}': unknown entity '{entity}' (use {string.Join(", ", CoreEntities)}, or a plugin collection '<pluginId>_<name>').";
    }

    public static bool Matches(IEnumerable<string> patterns, string entity, ChangeOperation operation)
    {
        var op = OperationName(operation);
        foreach (var pattern in patterns)
        {
            if (pattern == "*")
            {
                return true;
            }

            var dot = pattern.LastIndexOf('.');
            if (dot <= 0)
            {
                continue;
            }

            var patternEntity = pattern.AsSpan(0, dot);
            var patternOp = pattern.AsSpan(dot + 1);
            if ((patternEntity is "*" || patternEntity.Equals(entity, StringComparison.OrdinalIgnoreCase))
                && (patternOp is "*" || patternOp.SequenceEqual(op)))
            {
                return true;
            }
        }

        return false;
    }
}
