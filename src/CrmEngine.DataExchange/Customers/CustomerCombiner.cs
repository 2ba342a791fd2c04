using CrmEngine.Abstractions.Model;
using CrmEngine.DataExchange.Csv;
using CrmEngine.DataExchange.Duplicates;

namespace CrmEngine.DataExchange.Customers;

/// <summary>
/// How two images of a customer are combined. Import (the row wins): the row's non-empty values are written over
/// the card, lists gain the row's new items. Merge (the kept card wins): kept values stay, empty kept fields take the
/// removed card's value, lists are unioned without duplicates.
/// </summary>
internal static class CustomerCombiner
{
    private static readonly HashSet<string> ListFields = new(StringComparer.OrdinalIgnoreCase) { "emails", "phones", "tags", "profile.interests" };

    /// <summary>Fields the kept card always keeps in a merge (identity and lifecycle are decided on the kept card).</summary>
    private static readonly HashSet<string> KeptAlways = new(StringComparer.OrdinalIgnoreCase)
        { "id", "name", "kind", "status", "stage", "blacklisted", "overdueAmount" };

    /// <summary>Puts the parsed values of one row on <paramref name="target"/> (the row wins).</summary>
    public static void ApplyRow(Customer target, IReadOnlyList<(CustomerField Field, object Value)> values)
    {
        var structured = new Customer();
        var hasStructured = false;
        foreach (var (field, value) in values)
        {
            if (field.Name.StartsWith("address", StringComparison.Ordinal) || field.Name.StartsWith("contact", StringComparison.Ordinal))
            {
                field.Set(structured, value);
                hasStructured = true;
            }
            else
            {
                field.Set(target, value);
            }
        }

        if (hasStructured)
        {
            MergeAddresses(target, structured.Addresses, rowWins: true);
            MergeContacts(target, structured.Contacts, rowWins: true);
        }
    }

    /// <summary>
    /// External ids (and, for a merge, custom fields) that the two cards hold with different values: the same
    /// system cannot point to two ids.
    /// </summary>
    public static List<string> Conflicts(Customer kept, Customer other, bool includeCustom)
    {
        var conflicts = new List<string>();
        foreach (var (system, id) in other.ExternalIds)
        {
            if (kept.ExternalIds.TryGetValue(system, out var mine) && !string.Equals(mine, id, StringComparison.Ordinal))
            {
                conflicts.Add($"external id {system}: {mine} vs {id}");
            }
        }

        if (includeCustom)
        {
            foreach (var (name, value) in other.Custom)
            {
                if (name != DuplicateGuard.OtherField && kept.Custom.TryGetValue(name, out var mine) && mine.ToString() != value.ToString())
                {
                    conflicts.Add($"custom field {name}: {mine} vs {value}");
                }
            }
        }

        return conflicts;
    }

    /// <summary>Merges <paramref name="removed"/> into <paramref name="kept"/> by the merge rule (kept wins).</summary>
    public static void MergeInto(Customer kept, Customer removed)
    {
        var ctx = new ParseContext("\u001f");
        foreach (var field in CustomerFields.CardFields)
        {
            if (KeptAlways.Contains(field.Name) || ListFields.Contains(field.Name))
            {
                continue;
            }

            var mine = field.Format(kept, ctx);
            var theirs = field.Format(removed, ctx);
            if (mine.Length == 0 && theirs.Length > 0)
            {
                field.Set(kept, field.Parse(theirs, ctx)!);
            }
        }

        Union(kept.Emails, removed.Emails, e => DuplicateKeys.Email(e) ?? e);
        Union(kept.Phones, removed.Phones, p => DuplicateKeys.Phone(p) ?? p);
        Union(kept.Tags, removed.Tags.Where(t => t != DuplicateGuard.Tag), t => t.ToLowerInvariant());
        Union(kept.Profile.Interests, removed.Profile.Interests, t => t.ToLowerInvariant());

        // A defaulter stays one after a merge; receivables of both cards are now owed by the kept one.
        if (removed.Blacklisted && !kept.Blacklisted)
        {
            kept.Blacklisted = true;
            kept.BlacklistReason ??= removed.BlacklistReason;
        }

        kept.OverdueAmount += removed.OverdueAmount;

        foreach (var (system, id) in removed.ExternalIds)
        {
            kept.ExternalIds.TryAdd(system, id);
        }

        foreach (var (name, value) in removed.Custom)
        {
            if (name != DuplicateGuard.OtherField)
            {
                kept.Custom.TryAdd(name, value);
            }
        }

        // The pair is resolved: neither id is a "possible duplicate" of the other any more.
        if (kept.Custom.TryGetValue(DuplicateGuard.OtherField, out var others) && others.Text is { } text)
        {
            var rest = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(i => i != removed.Id).ToList();
            if (rest.Count == 0)
            {
                kept.Custom.Remove(DuplicateGuard.OtherField);
                kept.Tags.RemoveAll(t => t == DuplicateGuard.Tag);
            }
            else
            {
                kept.Custom[DuplicateGuard.OtherField] = CustomValue.Of(string.Join(",", rest));
            }
        }

        MergeAddresses(kept, removed.Addresses, rowWins: false);
        MergeContacts(kept, removed.Contacts, rowWins: false);
    }

    private static void Union<T>(List<T> target, IEnumerable<T> items, Func<T, string> key)
    {
        var seen = target.Select(key).ToHashSet(StringComparer.Ordinal);
        foreach (var item in items)
        {
            if (seen.Add(key(item)))
            {
                target.Add(item);
            }
        }
    }

    private static string AddressKey(Address a) =>
        string.Join("|", a.Kind, DuplicateKeys.City(a.Line1), DuplicateKeys.PostalCode(a.PostalCode), DuplicateKeys.City(a.City), a.Country?.Trim().ToUpperInvariant());

    private static void MergeAddresses(Customer target, List<Address> incoming, bool rowWins)
    {
        foreach (var address in incoming)
        {
            if (rowWins)
            {
                // A row describes the address of its kind: its non-empty parts replace the stored ones.
                var same = target.Addresses.FirstOrDefault(a => a.Kind == address.Kind);
                if (same is null)
                {
                    target.Addresses.Add(address);
                    continue;
                }

                same.Line1 = Pick(address.Line1, same.Line1);
                same.Line2 = Pick(address.Line2, same.Line2);
                same.PostalCode = Pick(address.PostalCode, same.PostalCode);
                same.City = Pick(address.City, same.City);
                same.Region = Pick(address.Region, same.Region);
                same.Country = Pick(address.Country, same.Country);
            }
            else if (target.Addresses.All(a => AddressKey(a) != AddressKey(address)))
            {
                target.Addresses.Add(address);
            }
        }

        static string? Pick(string? row, string? stored) => string.IsNullOrEmpty(row) ? stored : row;
    }

    private static void MergeContacts(Customer target, List<ContactPerson> incoming, bool rowWins)
    {
        foreach (var contact in incoming)
        {
            var same = target.Contacts.FirstOrDefault(c =>
                (contact.Id.Length > 0 && c.Id == contact.Id)
                || (DuplicateKeys.Email(contact.Email) is { } e && DuplicateKeys.Email(c.Email) == e)
                || (contact.Name.Length > 0 && DuplicateKeys.NameKey(c.Name) == DuplicateKeys.NameKey(contact.Name)));
            if (same is null)
            {
                if (contact.Id.Length == 0)
                {
                    contact.Id = Guid.CreateVersion7().ToString("N");
                }

                target.Contacts.Add(contact);
                continue;
            }

            same.Name = Choose(contact.Name, same.Name) ?? "";
            same.Role = Choose(contact.Role, same.Role);
            same.Email = Choose(contact.Email, same.Email);
            same.Phone = Choose(contact.Phone, same.Phone);
            same.Birthday = rowWins ? contact.Birthday ?? same.Birthday : same.Birthday ?? contact.Birthday;
            same.Primary = rowWins ? contact.Primary || same.Primary : same.Primary;
        }

        string? Choose(string? incoming, string? stored) =>
            rowWins ? (string.IsNullOrEmpty(incoming) ? stored : incoming) : (string.IsNullOrEmpty(stored) ? incoming : stored);
    }
}
