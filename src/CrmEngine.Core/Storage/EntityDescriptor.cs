using System.Globalization;
using System.Text;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using LiteDB;

namespace CrmEngine.Core.Storage;

/// <summary>One look-up of a collection: how index keys are taken from a record and from a query value.</summary>
internal sealed class IndexDefinition
{
    public IndexDefinition(string field, Func<object, IEnumerable<string?>> keys, Func<string, string?> normalize, bool listed = true)
    {
        Field = field;
        Keys = keys;
        Normalize = normalize;
        Listed = listed;
    }

    public string Field { get; }

    /// <summary>
    /// A look-up callers may search by value (<c>FindAsync</c>, API filters). False for a sort key kept only for ordered
    /// reads inside the engine (see <see cref="IndexReads"/>): it is stored and indexed like the others but not offered.
    /// </summary>
    public bool Listed { get; }

    /// <summary>Raw values of the record for this look-up (normalised by <see cref="Normalize"/>).</summary>
    public Func<object, IEnumerable<string?>> Keys { get; }

    /// <summary>Normalises a value the same way for storing and for querying; null means "no key".</summary>
    public Func<string, string?> Normalize { get; }
}

/// <summary>What the engine knows about one collection: names, CLR type, look-ups and core checks.</summary>
internal sealed class EntityDescriptor
{
    public EntityDescriptor(string entityName, string collectionName, Type clrType, IReadOnlyList<IndexDefinition> indexes,
        Action<object, ValidationContext>? validate)
    {
        EntityName = entityName;
        CollectionName = collectionName;
        ClrType = clrType;
        Indexes = indexes;
        IndexesByField = indexes.Where(i => i.Listed).ToDictionary(i => i.Field, StringComparer.OrdinalIgnoreCase);
        Validate = validate;
    }

    public string EntityName { get; }
    public string CollectionName { get; }
    public Type ClrType { get; }
    /// <summary>Every stored look-up, sort keys included.</summary>
    public IReadOnlyList<IndexDefinition> Indexes { get; }

    /// <summary>The look-ups callers may search (<see cref="IndexDefinition.Listed"/>).</summary>
    public IReadOnlyDictionary<string, IndexDefinition> IndexesByField { get; }
    public Action<object, ValidationContext>? Validate { get; }

    /// <summary>The stored field holding the keys of one look-up: <c>_ix.{field}</c>, entries "key\u0001id".</summary>
    public static string IndexPath(string field) => "$._ix." + field + "[*]";

    /// <summary>The stored member that holds every look-up's entries.</summary>
    internal const string LookUpMember = "_ix";

    /// <summary>
    /// The look-up entries of <paramref name="entity"/> as stored beside it (<c>_ix</c>): per look-up an array of
    /// <c>key\u0001id</c> entries, each normalised key once. Null when the entity has no look-ups.
    /// </summary>
    public BsonDocument? LookUpKeys(IEntity entity)
    {
        if (Indexes.Count == 0)
        {
            return null;
        }

        var ix = new BsonDocument();
        foreach (var def in Indexes)
        {
            var keys = new BsonArray();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var raw in def.Keys(entity))
            {
                if (raw is not null && def.Normalize(raw) is { } key && seen.Add(key))
                {
                    keys.Add(IndexKeys.Entry(key, entity.Id));
                }
            }

            ix[def.Field] = keys;
        }

        return ix;
    }

    /// <summary>The stored entries of look-up <paramref name="field"/> in a stored document (none when it has none).</summary>
    public static IEnumerable<string> EntriesOf(BsonDocument document, string field) =>
        document.TryGetValue(LookUpMember, out var ix) && ix.IsDocument && ix.AsDocument.TryGetValue(field, out var entries) && entries.IsArray
            ? entries.AsArray.Where(e => e.IsString).Select(e => e.AsString)
            : [];
}

/// <summary>Collects core validation errors and gives read access to the open transaction (for references).</summary>
internal sealed class ValidationContext
{
    public ValidationContext(Func<string, string, bool> exists) => Exists = exists;

    public List<ValidationError> Errors { get; } = [];

    /// <summary>(collection, id) exists in the store as the write sees it.</summary>
    public Func<string, string, bool> Exists { get; }

    public void Add(string field, string message) => Errors.Add(new ValidationError(field, message));
}

internal static class IndexKeys
{
    /// <summary>Separator between a key and the record id in stored index entries; below every printable character.</summary>
    public const char Separator = '\u0001';

    /// <summary>The stored index entry of <paramref name="key"/> (normalised) for record <paramref name="id"/>.</summary>
    public static string Entry(string key, string id) => key + Separator + id;

    /// <summary>The record id of a stored index entry (the text after the last separator).</summary>
    public static string IdOf(string entry) => entry[(entry.LastIndexOf(Separator) + 1)..];

    /// <summary>LiteDB refuses index keys above 1023 bytes; keys are cut (the same way when querying).</summary>
    private const int MaxKeyBytes = 600;

    public static string? Lower(string value) => Clean(value.Trim().ToLowerInvariant());

    public static string? Exact(string value) => Clean(value.Trim());

    /// <summary>Phone numbers keep digits and a leading plus: "+49 (30) 123-45" becomes "+493012345".</summary>
    public static string? Phone(string value)
    {
        var sb = new StringBuilder(value.Length);
        foreach (var c in value.Trim())
        {
            if (char.IsAsciiDigit(c) || (c == '+' && sb.Length == 0))
            {
                sb.Append(c);
            }
        }

        return sb.Length == 0 || sb.ToString() == "+" ? null : sb.ToString();
    }

    private static string? Clean(string value)
    {
        if (value.Length == 0)
        {
            return null;
        }

        var sb = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (!char.IsControl(c))
            {
                sb.Append(c);
            }
        }

        var text = sb.ToString();
        if (Encoding.UTF8.GetByteCount(text) > MaxKeyBytes)
        {
            var take = text.Length;
            while (take > 0 && Encoding.UTF8.GetByteCount(text.AsSpan(0, take)) > MaxKeyBytes)
            {
                take--;
            }

            if (take > 0 && char.IsHighSurrogate(text[take - 1]))
            {
                take--;
            }

            text = text[..take];
        }

        return text.Length == 0 ? null : text;
    }
}

/// <summary>The core entities: collection names, look-ups and the checks every write of them passes.</summary>
internal static class CoreEntities
{
    public static readonly EntityDescriptor Customer = new(EntityNames.Customer, "customers", typeof(Customer),
    [
        new(IndexedField.Email, o => ((Customer)o).Emails.Concat(((Customer)o).Contacts.Select(c => c.Email)), IndexKeys.Lower),
        new(IndexedField.Phone, o => ((Customer)o).Phones.Concat(((Customer)o).Contacts.Select(c => c.Phone)), IndexKeys.Phone),
        new(IndexedField.Owner, o => [((Customer)o).Owner], IndexKeys.Exact),
        new(IndexedField.Tag, o => ((Customer)o).Tags, IndexKeys.Lower),
        new(IndexedField.ExternalId, o => ExternalKeys(((Customer)o).ExternalIds), IndexKeys.Exact),
        new(IndexedField.Name, o => [((Customer)o).Name], IndexKeys.Lower),
    ], (o, ctx) => ValidateCustomer((Customer)o, ctx));

    public static readonly EntityDescriptor Activity = new(EntityNames.Activity, "activities", typeof(Activity),
    [
        new(IndexedField.CustomerId, o => [((Activity)o).CustomerId], IndexKeys.Exact),
        new(IndexedField.Owner, o => [((Activity)o).Owner], IndexKeys.Exact),
        new(IndexReads.ActivityDueField, o => [IndexReads.ActivityDueKey((Activity)o)], key => key, listed: false),
    ], (o, ctx) => ValidateActivity((Activity)o, ctx));

    public static readonly EntityDescriptor Order = new(EntityNames.Order, "orders", typeof(Order),
    [
        new(IndexedField.CustomerId, o => [((Order)o).CustomerId], IndexKeys.Exact),
        new(IndexedField.Owner, o => [((Order)o).Owner], IndexKeys.Exact),
        new(IndexedField.ExternalId, o => ExternalKeys(((Order)o).ExternalIds), IndexKeys.Exact),
    ], (o, ctx) => ValidateOrder((Order)o, ctx));

    public static readonly EntityDescriptor Product = new(EntityNames.Product, "products", typeof(Product),
    [
        new(IndexedField.Sku, o => [((Product)o).Sku], IndexKeys.Exact),
        new(IndexedField.Name, o => [((Product)o).Name], IndexKeys.Lower),
        new(IndexedField.ExternalId, o => ExternalKeys(((Product)o).ExternalIds), IndexKeys.Exact),
    ], (o, ctx) => ValidateProduct((Product)o, ctx));

    public static readonly EntityDescriptor Consent = new(EntityNames.Consent, "consents", typeof(ConsentEntry),
    [
        new(IndexedField.CustomerId, o => [((ConsentEntry)o).CustomerId], IndexKeys.Exact),
    ], (o, ctx) => ValidateConsent((ConsentEntry)o, ctx));

    public static IReadOnlyList<EntityDescriptor> All { get; } = [Customer, Activity, Order, Product, Consent];

    private static IEnumerable<string?> ExternalKeys(Dictionary<string, string>? ids) =>
        ids is null ? [] : ids.Where(p => !string.IsNullOrWhiteSpace(p.Value)).Select(p => p.Key + ":" + p.Value);

    private static void ValidateCustomer(Customer c, ValidationContext ctx)
    {
        if (string.IsNullOrWhiteSpace(c.Name))
        {
            ctx.Add(nameof(c.Name), "is required");
        }

        for (var i = 0; i < c.Emails.Count; i++)
        {
            if (!EmailSyntax.IsValid(c.Emails[i]))
            {
                ctx.Add($"Emails[{i}]", $"'{c.Emails[i]}' is not a valid e-mail address");
            }
        }

        for (var i = 0; i < c.Phones.Count; i++)
        {
            if (IndexKeys.Phone(c.Phones[i] ?? "") is null)
            {
                ctx.Add($"Phones[{i}]", $"'{c.Phones[i]}' holds no digits");
            }
        }

        for (var i = 0; i < c.Contacts.Count; i++)
        {
            var p = c.Contacts[i];
            if (p is null)
            {
                ctx.Add($"Contacts[{i}]", "is empty");
                continue;
            }

            if (string.IsNullOrWhiteSpace(p.Name))
            {
                ctx.Add($"Contacts[{i}].Name", "is required");
            }

            if (p.Email is not null && !EmailSyntax.IsValid(p.Email))
            {
                ctx.Add($"Contacts[{i}].Email", $"'{p.Email}' is not a valid e-mail address");
            }
        }

        foreach (var (key, value) in c.Custom)
        {
            if (string.IsNullOrWhiteSpace(key))
            {
                ctx.Add("Custom", "a custom field needs a name");
            }
            else if (value is null || !value.IsConsistent())
            {
                ctx.Add($"Custom[{key}]", $"must hold exactly the value for its type {value?.Type.ToString() ?? "(none)"}");
            }
        }

        if (c.CreditLimit < 0)
        {
            ctx.Add(nameof(c.CreditLimit), "must not be negative");
        }

        if (c.OverdueAmount < 0)
        {
            ctx.Add(nameof(c.OverdueAmount), "must not be negative");
        }

        if (c.VisitIntervalDays is <= 0)
        {
            ctx.Add(nameof(c.VisitIntervalDays), "must be a positive number of days");
        }

        if (c.Blacklisted && string.IsNullOrWhiteSpace(c.BlacklistReason))
        {
            ctx.Add(nameof(c.BlacklistReason), "is required when the customer is blacklisted");
        }
    }

    private static void ValidateActivity(Activity a, ValidationContext ctx)
    {
        RequireCustomer(a.CustomerId, ctx);
        if (string.IsNullOrWhiteSpace(a.Subject))
        {
            ctx.Add(nameof(a.Subject), "is required");
        }

        if (a.StartAt is { } start && a.EndAt is { } end && end < start)
        {
            ctx.Add(nameof(a.EndAt), "is before StartAt");
        }
    }

    private static void ValidateOrder(Order o, ValidationContext ctx)
    {
        RequireCustomer(o.CustomerId, ctx);
        if (string.IsNullOrWhiteSpace(o.Currency) || o.Currency.Length != 3 || !o.Currency.All(char.IsAsciiLetter))
        {
            ctx.Add(nameof(o.Currency), $"'{o.Currency}' is not a three-letter currency code");
        }

        for (var i = 0; i < o.Lines.Count; i++)
        {
            var l = o.Lines[i];
            if (l is null)
            {
                ctx.Add($"Lines[{i}]", "is empty");
                continue;
            }

            if (l.Quantity <= 0)
            {
                ctx.Add($"Lines[{i}].Quantity", "must be greater than zero");
            }

            if (l.UnitPrice < 0)
            {
                ctx.Add($"Lines[{i}].UnitPrice", "must not be negative");
            }

            if (string.IsNullOrWhiteSpace(l.Description) && string.IsNullOrWhiteSpace(l.Sku) && string.IsNullOrWhiteSpace(l.ProductId))
            {
                ctx.Add($"Lines[{i}]", "needs a product, a SKU or a description");
            }

            if (!string.IsNullOrWhiteSpace(l.ProductId) && !ctx.Exists(Product.CollectionName, l.ProductId))
            {
                ctx.Add($"Lines[{i}].ProductId", $"product '{l.ProductId}' does not exist");
            }
        }
    }

    private static void ValidateProduct(Product p, ValidationContext ctx)
    {
        if (string.IsNullOrWhiteSpace(p.Sku))
        {
            ctx.Add(nameof(p.Sku), "is required");
        }

        if (string.IsNullOrWhiteSpace(p.Name))
        {
            ctx.Add(nameof(p.Name), "is required");
        }

        if (p.ListPrice < 0)
        {
            ctx.Add(nameof(p.ListPrice), "must not be negative");
        }
    }

    private static void ValidateConsent(ConsentEntry c, ValidationContext ctx)
    {
        RequireCustomer(c.CustomerId, ctx);
        if (string.IsNullOrWhiteSpace(c.Purpose))
        {
            ctx.Add(nameof(c.Purpose), "is required");
        }

        if (string.IsNullOrWhiteSpace(c.Source))
        {
            ctx.Add(nameof(c.Source), "is required (where the consent was given or withdrawn)");
        }
    }

    private static void RequireCustomer(string customerId, ValidationContext ctx)
    {
        if (string.IsNullOrWhiteSpace(customerId))
        {
            ctx.Add("CustomerId", "is required");
        }
        else if (!ctx.Exists(Customer.CollectionName, customerId))
        {
            ctx.Add("CustomerId", $"customer '{customerId}' does not exist");
        }
    }

    /// <summary>Is this a valid stored collection/entity part: letters, digits, '_', '-', '.'.</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 60 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.');

    /// <summary>
    /// The LiteDB collection of plugin <paramref name="pluginId"/>'s collection <paramref name="name"/>.
    /// One-to-one up to letter case (LiteDB compares collection names ignoring case; a case-only clash
    /// is refused when the name is claimed, see <c>CrmDatabase.ClaimPluginCollection</c>): each part is
    /// lower-cased with '_' written "_u", '-' "_h" and '.' "_d"; the parts are joined by "__"; a
    /// leading digit gets "_" in front. <c>acme.welcome</c> + <c>notes</c> → <c>acme_dwelcome__notes</c>.
    /// </summary>
    public static string CollectionNameFor(string pluginId, string name)
    {
        var sb = new StringBuilder(pluginId.Length + name.Length + 8);
        if (pluginId.Length > 0 && char.IsAsciiDigit(pluginId[0]))
        {
            sb.Append('_');
        }

        Encode(sb, pluginId);
        sb.Append("__");
        Encode(sb, name);
        return sb.ToString();

        static void Encode(StringBuilder sb, string part)
        {
            foreach (var c in part)
            {
                switch (c)
                {
                    case '_': sb.Append("_u"); break;
                    case '-': sb.Append("_h"); break;
                    case '.': sb.Append("_d"); break;
                    default:
                        if (!char.IsAsciiLetterOrDigit(c))
                        {
                            throw new ArgumentException($"'{part}' is not a valid collection or plugin name: use letters, digits, '_', '-' or '.'.");
                        }

                        sb.Append(char.ToLowerInvariant(c));
                        break;
                }
            }
        }
    }

    /// <summary>
    /// The name the first releases stored a plugin entity under (not one-to-one: '.', '-' and '_' all
    /// became '_'). Only used to keep reading a collection that already exists under it.
    /// </summary>
    public static string LegacyCollectionNameFor(string entityName)
    {
        var sb = new StringBuilder(entityName.Length + 1);
        if (entityName.Length > 0 && char.IsAsciiDigit(entityName[0]))
        {
            sb.Append('p');
        }

        foreach (var c in entityName)
        {
            sb.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        }

        return sb.ToString().ToLower(CultureInfo.InvariantCulture);
    }
}

internal static class EmailSyntax
{
    /// <summary>A practical check: one '@', a non-empty local part, a dotted domain, no spaces.</summary>
    public static bool IsValid(string? email)
    {
        if (string.IsNullOrWhiteSpace(email) || email.Length > 254 || email.Any(char.IsWhiteSpace))
        {
            return false;
        }

        var at = email.IndexOf('@', StringComparison.Ordinal);
        if (at <= 0 || at != email.LastIndexOf('@') || at == email.Length - 1)
        {
            return false;
        }

        var domain = email[(at + 1)..];
        return domain.Contains('.', StringComparison.Ordinal) && !domain.StartsWith('.') && !domain.EndsWith('.')
            && !domain.Contains("..", StringComparison.Ordinal) && System.Net.Mail.MailAddress.TryCreate(email, out _);
    }
}
