using System.Globalization;
using System.Text.RegularExpressions;
using CrmEngine.Abstractions.Model;
using CrmEngine.Core.Storage;

namespace CrmEngine.DataExchange.Csv;

/// <summary>
/// One customer field a CSV column can hold. Parse turns the cell text into a value (or says what is wrong);
/// Set puts the value on a card; Format writes it back as text (what import reads).
/// </summary>
internal sealed class CustomerField
{
    public CustomerField(string name, Func<string, ParseContext, object?> parse, Action<Customer, object> set, Func<Customer, ParseContext, string> format)
    {
        Name = name;
        Parse = parse;
        Set = set;
        Format = format;
    }

    /// <summary>The field name as mapping files and headers spell it (<c>address2.city</c>, <c>custom.vip</c>).</summary>
    public string Name { get; }
    public Func<string, ParseContext, object?> Parse { get; }
    public Action<Customer, object> Set { get; }
    public Func<Customer, ParseContext, string> Format { get; }
}

/// <summary>Settings a cell is read and written with.</summary>
internal sealed record ParseContext(string ListSeparator);

/// <summary>A cell that cannot be read; the message says what is expected.</summary>
internal sealed class CellException(string message) : Exception(message);

/// <summary>The field catalogue: names, parsing and formatting of every customer field import and export know.</summary>
internal static partial class CustomerFields
{
    private static readonly string[] AddressParts = ["kind", "line1", "line2", "postalCode", "city", "region", "country"];
    private static readonly string[] ContactParts = ["id", "name", "role", "email", "phone", "birthday", "primary"];

    private static readonly Dictionary<string, CustomerField> Scalars = BuildScalars();

    /// <summary>The single-valued and list fields of the card (not addresses, contacts, external ids or custom fields).</summary>
    public static IEnumerable<CustomerField> CardFields => Scalars.Values.Where(f => f.Name != "externalId");

    /// <summary>Every name a mapping may use, for error messages.</summary>
    public static string Known =>
        string.Join(", ", Scalars.Keys.Order(StringComparer.Ordinal)) +
        ", externalId (system:id), externalId.<system>, custom.<name> (type text|number|date|boolean), " +
        "address[N].{" + string.Join('|', AddressParts) + "}, contact[N].{" + string.Join('|', ContactParts) + "}";

    [GeneratedRegex(@"^(address|contact)(\d*)\.([A-Za-z0-9]+)$", RegexOptions.CultureInvariant)]
    private static partial Regex GroupField();

    /// <summary>The field called <paramref name="name"/> (case-insensitive), or null when there is none.</summary>
    public static CustomerField? Resolve(string name, CustomValueType? customType = null)
    {
        name = name.Trim();
        if (Scalars.TryGetValue(name, out var scalar))
        {
            return scalar;
        }

        if (name.StartsWith("custom.", StringComparison.OrdinalIgnoreCase) && name.Length > 7)
        {
            var rest = name[7..];
            var type = customType;
            var colon = rest.LastIndexOf(':');
            if (colon > 0 && Enum.TryParse<CustomValueType>(rest[(colon + 1)..], true, out var t))
            {
                type = t;
                rest = rest[..colon];
            }

            return Custom(rest, type ?? CustomValueType.Text);
        }

        if (name.StartsWith("externalId.", StringComparison.OrdinalIgnoreCase) && name.Length > 11)
        {
            var system = name[11..];
            return new CustomerField("externalId." + system,
                (s, _) => s,
                (c, v) => c.ExternalIds[system] = (string)v,
                (c, _) => c.ExternalIds.TryGetValue(system, out var id) ? id : "");
        }

        var m = GroupField().Match(name);
        if (m.Success)
        {
            var index = m.Groups[2].Value.Length == 0 ? 1 : int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            if (index is < 1 or > 20)
            {
                return null;
            }

            var part = m.Groups[3].Value;
            return m.Groups[1].Value == "address" ? AddressField(index, part) : ContactField(index, part);
        }

        return null;
    }

    public static string AddressName(int index, string part) => (index == 1 ? "address" : "address" + index.ToString(CultureInfo.InvariantCulture)) + "." + part;

    public static string ContactName(int index, string part) => (index == 1 ? "contact" : "contact" + index.ToString(CultureInfo.InvariantCulture)) + "." + part;

    /// <summary>The columns an export writes, for the shape of the data at hand.</summary>
    public static List<CustomerField> ExportColumns(int addresses, int contacts, IEnumerable<string> externalSystems,
        IEnumerable<(string Name, CustomValueType Type)> custom)
    {
        var list = new List<CustomerField>(Scalars.Values.Where(f => f.Name != "externalId"));
        list.AddRange(externalSystems.Order(StringComparer.Ordinal).Select(s => Resolve("externalId." + s)!));
        for (var i = 1; i <= addresses; i++)
        {
            list.AddRange(AddressParts.Select(p => AddressField(i, p)!));
        }

        for (var i = 1; i <= contacts; i++)
        {
            list.AddRange(ContactParts.Select(p => ContactField(i, p)!));
        }

        list.AddRange(custom.OrderBy(c => c.Name, StringComparer.Ordinal).Select(c => Custom(c.Name, c.Type)));
        return list;
    }

    private static CustomerField Custom(string name, CustomValueType type) => new(
        "custom." + name + ":" + type.ToString().ToLowerInvariant(),
        (s, _) => type switch
        {
            CustomValueType.Number => CustomValue.Of(ParseDecimal(s)),
            CustomValueType.Date => CustomValue.Of(ParseDateTime(s)),
            CustomValueType.Boolean => CustomValue.Of(ParseBool(s)),
            _ => CustomValue.Of(s),
        },
        (c, v) => c.Custom[name] = (CustomValue)v,
        (c, _) => c.Custom.TryGetValue(name, out var v) && v.Type == type ? v.ToString() : "");

    private static CustomerField? AddressField(int index, string part)
    {
        Func<Address, string?> get;
        Action<Address, string> set;
        switch (part.ToLowerInvariant())
        {
            case "kind":
                return new CustomerField(AddressName(index, "kind"), (s, _) => ParseEnum<AddressKind>(s),
                    (c, v) => At(c.Addresses, index).Kind = (AddressKind)v,
                    (c, _) => c.Addresses.Count >= index ? c.Addresses[index - 1].Kind.ToString() : "");
            case "line1": get = a => a.Line1; set = (a, v) => a.Line1 = v; break;
            case "line2": get = a => a.Line2; set = (a, v) => a.Line2 = v; break;
            case "postalcode": get = a => a.PostalCode; set = (a, v) => a.PostalCode = v; break;
            case "city": get = a => a.City; set = (a, v) => a.City = v; break;
            case "region": get = a => a.Region; set = (a, v) => a.Region = v; break;
            case "country": get = a => a.Country; set = (a, v) => a.Country = v; break;
            default: return null;
        }

        var canonical = AddressParts.First(p => p.Equals(part, StringComparison.OrdinalIgnoreCase));
        return new CustomerField(AddressName(index, canonical), (s, _) => s,
            (c, v) => set(At(c.Addresses, index), (string)v),
            (c, _) => c.Addresses.Count >= index ? get(c.Addresses[index - 1]) ?? "" : "");
    }

    private static CustomerField? ContactField(int index, string part)
    {
        var canonical = ContactParts.FirstOrDefault(p => p.Equals(part, StringComparison.OrdinalIgnoreCase));
        if (canonical is null)
        {
            return null;
        }

        var name = ContactName(index, canonical);
        ContactPerson? Of(Customer c) => c.Contacts.Count >= index ? c.Contacts[index - 1] : null;
        return canonical switch
        {
            "birthday" => new CustomerField(name, (s, _) => ParseDate(s), (c, v) => At(c.Contacts, index).Birthday = (DateOnly)v,
                (c, _) => Of(c)?.Birthday?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? ""),
            "primary" => new CustomerField(name, (s, _) => ParseBool(s), (c, v) => At(c.Contacts, index).Primary = (bool)v,
                (c, _) => Of(c) is { } p ? (p.Primary ? "true" : "false") : ""),
            "email" => new CustomerField(name, (s, _) => ParseEmail(s), (c, v) => At(c.Contacts, index).Email = (string)v, (c, _) => Of(c)?.Email ?? ""),
            "phone" => new CustomerField(name, (s, _) => ParsePhone(s), (c, v) => At(c.Contacts, index).Phone = (string)v, (c, _) => Of(c)?.Phone ?? ""),
            "id" => new CustomerField(name, (s, _) => s, (c, v) => At(c.Contacts, index).Id = (string)v, (c, _) => Of(c)?.Id ?? ""),
            "role" => new CustomerField(name, (s, _) => s, (c, v) => At(c.Contacts, index).Role = (string)v, (c, _) => Of(c)?.Role ?? ""),
            _ => new CustomerField(name, (s, _) => s, (c, v) => At(c.Contacts, index).Name = (string)v, (c, _) => Of(c)?.Name ?? ""),
        };
    }

    private static T At<T>(List<T> list, int index) where T : new()
    {
        while (list.Count < index)
        {
            list.Add(new T());
        }

        return list[index - 1];
    }

    private static Dictionary<string, CustomerField> BuildScalars()
    {
        var fields = new List<CustomerField>
        {
            new("id", (s, _) => s, (c, v) => c.Id = (string)v, (c, _) => c.Id),
            Text("name", c => c.Name, (c, v) => c.Name = v),
            new("kind", (s, _) => ParseEnum<CustomerKind>(s), (c, v) => c.Kind = (CustomerKind)v, (c, _) => c.Kind.ToString()),
            new("status", (s, _) => ParseEnum<CustomerStatus>(s), (c, v) => c.Status = (CustomerStatus)v, (c, _) => c.Status.ToString()),
            new("stage", (s, _) => ParseEnum<LifecycleStage>(s), (c, v) => c.Stage = (LifecycleStage)v, (c, _) => c.Stage.ToString()),
            Text("owner", c => c.Owner, (c, v) => c.Owner = v),
            List("emails", c => c.Emails, ParseEmail),
            List("phones", c => c.Phones, ParsePhone),
            List("tags", c => c.Tags, s => s),
            new("externalId", (s, ctx) => Split(s, ctx).Select(ParseExternal).ToList(),
                (c, v) => { foreach (var (k, id) in (List<(string, string)>)v) { c.ExternalIds[k] = id; } },
                (c, ctx) => string.Join(ctx.ListSeparator, c.ExternalIds.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + ":" + p.Value))),
            Text("creditLevel", c => c.CreditLevel, (c, v) => c.CreditLevel = v),
            new("creditLimit", (s, _) => ParseDecimal(s), (c, v) => c.CreditLimit = (decimal)v, (c, _) => Dec(c.CreditLimit)),
            new("blacklisted", (s, _) => ParseBool(s), (c, v) => c.Blacklisted = (bool)v, (c, _) => c.Blacklisted ? "true" : "false"),
            Text("blacklistReason", c => c.BlacklistReason, (c, v) => c.BlacklistReason = v),
            Text("paymentTerms", c => c.PaymentTerms, (c, v) => c.PaymentTerms = v),
            new("overdueAmount", (s, _) => ParseDecimal(s), (c, v) => c.OverdueAmount = (decimal)v, (c, _) => Dec(c.OverdueAmount)),
            Text("currency", c => c.Currency, (c, v) => c.Currency = v),
            Text("tradingHabits", c => c.TradingHabits, (c, v) => c.TradingHabits = v),
            Text("salesStatus", c => c.SalesStatus, (c, v) => c.SalesStatus = v),
            new("visitIntervalDays", (s, _) => ParseInt(s), (c, v) => c.VisitIntervalDays = (int)v,
                (c, _) => c.VisitIntervalDays?.ToString(CultureInfo.InvariantCulture) ?? ""),
            new("nextVisitAt", (s, _) => ParseDateTime(s), (c, v) => c.NextVisitAt = (DateTimeOffset)v, (c, _) => Dto(c.NextVisitAt)),
            new("verifiedAt", (s, _) => ParseDateTime(s), (c, v) => c.VerifiedAt = (DateTimeOffset)v, (c, _) => Dto(c.VerifiedAt)),
            Text("profile.region", c => c.Profile.Region, (c, v) => c.Profile.Region = v),
            Text("profile.gender", c => c.Profile.Gender, (c, v) => c.Profile.Gender = v),
            Text("profile.ageBand", c => c.Profile.AgeBand, (c, v) => c.Profile.AgeBand = v),
            Text("profile.incomeBand", c => c.Profile.IncomeBand, (c, v) => c.Profile.IncomeBand = v),
            Text("profile.occupation", c => c.Profile.Occupation, (c, v) => c.Profile.Occupation = v),
            Text("profile.family", c => c.Profile.Family, (c, v) => c.Profile.Family = v),
            Text("profile.informationSource", c => c.Profile.InformationSource, (c, v) => c.Profile.InformationSource = v),
            new("profile.birthday", (s, _) => ParseDate(s), (c, v) => c.Profile.Birthday = (DateOnly)v,
                (c, _) => c.Profile.Birthday?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? ""),
            List("profile.interests", c => c.Profile.Interests, s => s),
        };
        return fields.ToDictionary(f => f.Name, StringComparer.OrdinalIgnoreCase);
    }

    private static CustomerField Text(string name, Func<Customer, string?> get, Action<Customer, string> set) =>
        new(name, (s, _) => s, (c, v) => set(c, (string)v), (c, _) => get(c) ?? "");

    /// <summary>A list cell holds several values separated by the list separator; each is added once.</summary>
    private static CustomerField List(string name, Func<Customer, List<string>> list, Func<string, string> parseOne) =>
        new(name, (s, ctx) => Split(s, ctx).Select(parseOne).ToList(),
            (c, v) =>
            {
                var target = list(c);
                foreach (var item in (List<string>)v)
                {
                    if (!target.Contains(item, StringComparer.OrdinalIgnoreCase))
                    {
                        target.Add(item);
                    }
                }
            },
            (c, ctx) => string.Join(ctx.ListSeparator, list(c)));

    private static IEnumerable<string> Split(string s, ParseContext ctx) =>
        s.Split(ctx.ListSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string Dec(decimal? d) => d?.ToString(CultureInfo.InvariantCulture) ?? "";

    private static string Dto(DateTimeOffset? d) => d?.ToString("O", CultureInfo.InvariantCulture) ?? "";

    public static string ParseEmail(string s) =>
        EmailSyntax.IsValid(s) ? s : throw new CellException($"'{s}' is not a valid e-mail address");

    public static string ParsePhone(string s) =>
        IndexKeys.Phone(s) is not null ? s : throw new CellException($"'{s}' is not a phone number (it holds no digits)");

    private static (string, string) ParseExternal(string s)
    {
        var colon = s.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && colon < s.Length - 1
            ? (s[..colon].Trim(), s[(colon + 1)..].Trim())
            : throw new CellException($"'{s}' is not an external id: write system:id, for example erp:C1002");
    }

    private static T ParseEnum<T>(string s) where T : struct, Enum
    {
        var compact = new string(s.Where(char.IsLetterOrDigit).ToArray());
        if (compact.Length > 0 && !compact.All(char.IsAsciiDigit) && Enum.TryParse<T>(compact, true, out var value))
        {
            return value;
        }

        throw new CellException($"'{s}' is not one of: {string.Join(", ", Enum.GetNames<T>())}");
    }

    private static decimal ParseDecimal(string s) =>
        decimal.TryParse(s, NumberStyles.Number & ~NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out var d)
            ? d
            : throw new CellException($"'{s}' is not a number (write digits with a dot as decimal separator, for example 1234.50)");

    private static int ParseInt(string s) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i)
            ? i
            : throw new CellException($"'{s}' is not a whole number");

    private static bool ParseBool(string s) => s.Trim().ToLowerInvariant() switch
    {
        "true" or "yes" or "y" or "1" or "ja" or "x" => true,
        "false" or "no" or "n" or "0" or "nein" => false,
        _ => throw new CellException($"'{s}' is not true or false (also yes/no, 1/0)"),
    };

    private static DateOnly ParseDate(string s) =>
        DateOnly.TryParseExact(s.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d)
            ? d
            : throw new CellException($"'{s}' is not a date (write yyyy-MM-dd)");

    private static DateTimeOffset ParseDateTime(string s)
    {
        var t = s.Trim();
        if (DateOnly.TryParseExact(t, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
        {
            return new DateTimeOffset(d.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        }

        return DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var dto) && t.Length >= 10 && t[4] == '-'
            ? dto
            : throw new CellException($"'{s}' is not a date/time (write ISO 8601, for example 2026-03-01 or 2026-03-01T09:30:00+01:00)");
    }
}
