using System.Globalization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Rules.Segments;

namespace CrmEngine.Rules.Events;

/// <summary>
/// How a record is shown to an event rule as <c>record</c>, and which of its fields a
/// pre-operation rule may set. Writable fields are copied back onto the entity with their type
/// checked (an enum must name one of its values, a date must be a Date or an ISO text); changing
/// any other field is an error naming it. The table is documented in docs/rules.md.
/// </summary>
public static class RecordMapping
{
    private sealed record Field(string Name, Action<object, object?> Set);

    private static readonly Dictionary<Type, Field[]> Writable = new()
    {
        [typeof(Customer)] =
        [
            new("name", (e, v) => ((Customer)e).Name = Text(v, "name") ?? ""),
            new("status", (e, v) => ((Customer)e).Status = Enum<CustomerStatus>(v, "status")),
            new("stage", (e, v) => ((Customer)e).Stage = Enum<LifecycleStage>(v, "stage")),
            new("owner", (e, v) => ((Customer)e).Owner = Text(v, "owner")),
            new("tags", (e, v) => ((Customer)e).Tags = Texts(v, "tags")),
            new("creditLevel", (e, v) => ((Customer)e).CreditLevel = Text(v, "creditLevel")),
            new("creditLimit", (e, v) => ((Customer)e).CreditLimit = Number(v, "creditLimit")),
            new("blacklisted", (e, v) => ((Customer)e).Blacklisted = Bool(v, "blacklisted")),
            new("blacklistReason", (e, v) => ((Customer)e).BlacklistReason = Text(v, "blacklistReason")),
            new("paymentTerms", (e, v) => ((Customer)e).PaymentTerms = Text(v, "paymentTerms")),
            new("salesStatus", (e, v) => ((Customer)e).SalesStatus = Text(v, "salesStatus")),
            new("tradingHabits", (e, v) => ((Customer)e).TradingHabits = Text(v, "tradingHabits")),
            new("visitIntervalDays", (e, v) => ((Customer)e).VisitIntervalDays = Number(v, "visitIntervalDays") is { } n ? (int)n : null),
            new("nextVisitAt", (e, v) => ((Customer)e).NextVisitAt = Date(v, "nextVisitAt")),
            new("region", (e, v) => ((Customer)e).Profile.Region = Text(v, "region")),
            new("custom", (e, v) => ((Customer)e).Custom = Custom(v)),
        ],
        [typeof(Order)] =
        [
            new("status", (e, v) => ((Order)e).Status = Enum<OrderStatus>(v, "status")),
            new("owner", (e, v) => ((Order)e).Owner = Text(v, "owner")),
            new("number", (e, v) => ((Order)e).Number = Text(v, "number")),
        ],
        [typeof(Activity)] =
        [
            new("subject", (e, v) => ((Activity)e).Subject = Text(v, "subject") ?? ""),
            new("body", (e, v) => ((Activity)e).Body = Text(v, "body")),
            new("owner", (e, v) => ((Activity)e).Owner = Text(v, "owner")),
            new("status", (e, v) => ((Activity)e).Status = Enum<ActivityStatus>(v, "status")),
            new("type", (e, v) => ((Activity)e).Type = Enum<ActivityType>(v, "type")),
            new("dueAt", (e, v) => ((Activity)e).DueAt = Date(v, "dueAt")),
            new("outcome", (e, v) => ((Activity)e).Outcome = Text(v, "outcome")),
        ],
    };

    /// <summary>The fields a pre-operation rule may set on a record of type <typeparamref name="T"/>.</summary>
    public static IReadOnlyList<string> WritableFields<T>() => Writable.TryGetValue(typeof(T), out var f) ? f.Select(x => x.Name).ToList() : [];

    public static Dictionary<string, object?>? ToPlain(object? entity) => entity switch
    {
        null => null,
        Customer c => CustomerFacts.Card(c),
        Order o => new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["id"] = o.Id,
            ["customerId"] = o.CustomerId,
            ["number"] = o.Number,
            ["status"] = o.Status.ToString(),
            ["currency"] = o.Currency,
            ["orderedAt"] = o.OrderedAt,
            ["owner"] = o.Owner,
            ["total"] = (double)o.Total,
            ["lines"] = o.Lines.Select(l => (object?)new Dictionary<string, object?>
            {
                ["productId"] = l.ProductId,
                ["sku"] = l.Sku,
                ["description"] = l.Description,
                ["quantity"] = (double)l.Quantity,
                ["unit"] = l.Unit,
                ["unitPrice"] = (double)l.UnitPrice,
                ["amount"] = (double)l.Amount,
            }).ToList(),
            ["createdAt"] = o.CreatedAt,
            ["updatedAt"] = o.UpdatedAt,
        },
        Activity a => new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["id"] = a.Id,
            ["customerId"] = a.CustomerId,
            ["type"] = a.Type.ToString(),
            ["status"] = a.Status.ToString(),
            ["subject"] = a.Subject,
            ["body"] = a.Body,
            ["owner"] = a.Owner,
            ["dueAt"] = a.DueAt,
            ["startAt"] = a.StartAt,
            ["endAt"] = a.EndAt,
            ["outcome"] = a.Outcome,
            ["source"] = a.Source,
            ["createdAt"] = a.CreatedAt,
            ["updatedAt"] = a.UpdatedAt,
        },
        _ => throw new ArgumentException($"Records of type {entity.GetType().Name} are not offered to rules."),
    };

    /// <summary>
    /// Copies what the rule changed back onto <paramref name="entity"/>. Throws <see cref="ArgumentException"/>
    /// naming the field when a value has the wrong type or a read-only field was changed.
    /// </summary>
    public static IReadOnlyList<string> CopyBack(object entity, IReadOnlyDictionary<string, object?> before, IReadOnlyDictionary<string, object?> after)
    {
        ArgumentNullException.ThrowIfNull(entity);
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        var fields = Writable.TryGetValue(entity.GetType(), out var f) ? f : [];
        var changed = new List<string>();
        foreach (var key in before.Keys.Union(after.Keys))
        {
            before.TryGetValue(key, out var b);
            after.TryGetValue(key, out var a);
            if (Same(b, a))
            {
                continue;
            }

            var field = fields.FirstOrDefault(x => x.Name == key)
                ?? throw new ArgumentException($"field '{key}' cannot be set by a rule; fields a rule may set: {string.Join(", ", fields.Select(x => x.Name))}");
            field.Set(entity, a);
            changed.Add(key);
        }

        return changed;
    }

    private static bool Same(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (null, _) or (_, null) => false,
        (double x, _) when IsNumber(b) => x == Convert.ToDouble(b, CultureInfo.InvariantCulture),
        (_, double y) when IsNumber(a) => Convert.ToDouble(a, CultureInfo.InvariantCulture) == y,
        (DateTimeOffset x, DateTimeOffset y) => x.ToUnixTimeMilliseconds() == y.ToUnixTimeMilliseconds(),
        (DateOnly x, DateTimeOffset y) => new DateTimeOffset(x.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero) == y,
        (System.Collections.IDictionary x, System.Collections.IDictionary y) =>
            x.Count == y.Count && x.Keys.Cast<object>().All(k => y.Contains(k) && Same(x[k], y[k])),
        (IEnumerable<KeyValuePair<string, object?>> x, IEnumerable<KeyValuePair<string, object?>> y) =>
            x.Count() == y.Count() && x.All(p => y.Any(q => q.Key == p.Key && Same(p.Value, q.Value))),
        (string x, string y) => x == y,
        (System.Collections.IEnumerable x, System.Collections.IEnumerable y) when a is not string && b is not string =>
            x.Cast<object?>().ToList() is var xs && y.Cast<object?>().ToList() is var ys && xs.Count == ys.Count && xs.Zip(ys).All(p => Same(p.First, p.Second)),
        _ => Equals(a, b),
    };

    private static bool IsNumber(object? v) => v is int or long or double or float or decimal;

    private static string? Text(object? v, string field) => v switch
    {
        null => null,
        string s => s,
        _ => throw new ArgumentException($"field '{field}' must be text, not {Show(v)}"),
    };

    private static List<string> Texts(object? v, string field) => v switch
    {
        null => [],
        IEnumerable<object?> list => list.Select(x => x as string ?? throw new ArgumentException($"field '{field}' must be a list of texts, not a list holding {Show(x)}")).ToList(),
        _ => throw new ArgumentException($"field '{field}' must be a list of texts, not {Show(v)}"),
    };

    private static decimal? Number(object? v, string field) => v switch
    {
        null => null,
        double d when !double.IsNaN(d) && !double.IsInfinity(d) => (decimal)d,
        _ => throw new ArgumentException($"field '{field}' must be a number, not {Show(v)}"),
    };

    private static bool Bool(object? v, string field) => v as bool? ?? throw new ArgumentException($"field '{field}' must be true or false, not {Show(v)}");

    private static DateTimeOffset? Date(object? v, string field) => v switch
    {
        null => null,
        DateTimeOffset d => d,
        string s when DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var d) => d,
        _ => throw new ArgumentException($"field '{field}' must be a date, not {Show(v)}"),
    };

    private static TEnum Enum<TEnum>(object? v, string field) where TEnum : struct, Enum =>
        v is string s && System.Enum.TryParse<TEnum>(s, ignoreCase: true, out var e) && System.Enum.IsDefined(e) && !int.TryParse(s, out _)
            ? e
            : throw new ArgumentException($"field '{field}' must be one of {string.Join(", ", System.Enum.GetNames<TEnum>())}, not {Show(v)}");

    private static Dictionary<string, CustomValue> Custom(object? v)
    {
        if (v is not IEnumerable<KeyValuePair<string, object?>> map)
        {
            throw new ArgumentException($"field 'custom' must be an object of name: value, not {Show(v)}");
        }

        var result = new Dictionary<string, CustomValue>(StringComparer.Ordinal);
        foreach (var (name, value) in map)
        {
            switch (value)
            {
                case null:
                    break;
                case string s:
                    result[name] = CustomValue.Of(s);
                    break;
                case double d:
                    result[name] = CustomValue.Of((decimal)d);
                    break;
                case bool b:
                    result[name] = CustomValue.Of(b);
                    break;
                case DateTimeOffset dt:
                    result[name] = CustomValue.Of(dt);
                    break;
                default:
                    throw new ArgumentException($"custom field '{name}' must be text, a number, true/false or a date, not {Show(value)}");
            }
        }

        return result;
    }

    private static string Show(object? v) => v switch
    {
        null => "nothing",
        string s => $"the text \"{s}\"",
        double d => $"the number {d.ToString(CultureInfo.InvariantCulture)}",
        bool b => b ? "true" : "false",
        System.Collections.IDictionary or IEnumerable<KeyValuePair<string, object?>> => "an object",
        System.Collections.IEnumerable => "a list",
        _ => v.GetType().Name,
    };
}
