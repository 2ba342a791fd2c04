using System.Globalization;
using System.Text;
using CrmEngine.Abstractions.Model;
using CrmEngine.Core.Storage;

namespace CrmEngine.DataExchange.Duplicates;

/// <summary>
/// How values are normalised before they are compared. E-mail and phone use the store's own look-up
/// normalisation, so a key found here is the key <c>FindAsync</c> searches.
/// </summary>
internal static class DuplicateKeys
{
    /// <summary>Legal forms and fillers that say nothing about who a customer is.</summary>
    private static readonly HashSet<string> NoiseTokens = new(StringComparer.Ordinal)
    {
        "gmbh", "ag", "kg", "ohg", "ug", "mbh", "co", "ltd", "limited", "inc", "llc", "plc", "sa", "sarl", "sas", "srl", "spa",
        "bv", "nv", "oy", "ab", "as", "the", "und", "and", "et", "corp", "corporation", "company", "e", "v", "ev",
    };

    public static string? Email(string? value) => value is null ? null : IndexKeys.Lower(value);

    public static string? Phone(string? value) => value is null ? null : IndexKeys.Phone(value);

    /// <summary>Upper case without spaces and dashes: "d-10 115" and "D10115" are one postcode.</summary>
    public static string? PostalCode(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var sb = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (char.IsLetterOrDigit(c))
            {
                sb.Append(char.ToUpperInvariant(c));
            }
        }

        return sb.Length == 0 ? null : sb.ToString();
    }

    public static string? City(string? value)
    {
        var tokens = Tokens(value);
        return tokens.Count == 0 ? null : string.Join(' ', tokens);
    }

    /// <summary>
    /// Lower case, accents removed, punctuation as spaces, legal forms dropped, tokens sorted:
    /// "Müller & Söhne GmbH" and "Soehne Mueller" are compared as "muller sohne" / "mueller soehne".
    /// </summary>
    public static string NameKey(string? name)
    {
        var tokens = Tokens(name).Where(t => !NoiseTokens.Contains(t)).ToList();
        if (tokens.Count == 0)
        {
            tokens = Tokens(name);
        }

        tokens.Sort(StringComparer.Ordinal);
        return string.Join(' ', tokens);
    }

    /// <summary>
    /// A name as its letters and digits only, lower case, accents removed, words in their original order, legal forms
    /// kept: "Meier GmbH" → "meiergmbh". <see cref="NameKey"/> sorts the words, so a letter swapped with a space
    /// changes it a lot; here that is one transposition.
    /// </summary>
    public static string Squash(string? name) => string.Concat(Tokens(name));

    /// <summary>Blocking keys for names: the first three letters of each significant token.</summary>
    public static IEnumerable<string> NameBlocks(string nameKey) =>
        nameKey.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(t => t.Length > 3 ? t[..3] : t).Distinct(StringComparer.Ordinal);

    /// <summary>
    /// Blocking keys that survive one typing slip (two neighbouring characters swapped): per token its first three
    /// letters in sorted order (a swap inside them keeps the block), and the first three letters of the squashed name
    /// (a letter swapped with the space between words keeps the block). Used beside <see cref="NameBlocks"/>.
    /// </summary>
    public static IEnumerable<string> SwapBlocks(string nameKey, string squashed)
    {
        foreach (var token in nameKey.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var head = (token.Length > 3 ? token[..3] : token).ToCharArray();
            Array.Sort(head);
            yield return "~" + new string(head);
        }

        if (squashed.Length > 0)
        {
            yield return "^" + (squashed.Length > 3 ? squashed[..3] : squashed);
        }
    }

    public static List<string> Tokens(string? text)
    {
        var tokens = new List<string>();
        if (string.IsNullOrWhiteSpace(text))
        {
            return tokens;
        }

        var decomposed = text.Normalize(NormalizationForm.FormD);
        var sb = new StringBuilder(decomposed.Length);
        foreach (var c in decomposed)
        {
            var category = CharUnicodeInfo.GetUnicodeCategory(c);
            if (category == UnicodeCategory.NonSpacingMark)
            {
                continue;
            }

            if (char.IsLetterOrDigit(c))
            {
                sb.Append(char.ToLowerInvariant(c));
            }
            else if (sb.Length > 0)
            {
                tokens.Add(sb.ToString());
                sb.Clear();
            }
        }

        if (sb.Length > 0)
        {
            tokens.Add(sb.ToString());
        }

        // Scripts without spaces between words (Chinese, Japanese) are one token per name: compare them whole.
        return tokens;
    }

    public static IEnumerable<string> Emails(Customer c) =>
        c.Emails.Concat(c.Contacts.Select(p => p.Email)).Select(Email).OfType<string>().Distinct(StringComparer.Ordinal);

    public static IEnumerable<string> Phones(Customer c) =>
        c.Phones.Concat(c.Contacts.Select(p => p.Phone)).Select(Phone).OfType<string>().Distinct(StringComparer.Ordinal);

    public static IEnumerable<string> PostalCodes(Customer c) =>
        c.Addresses.Select(a => PostalCode(a.PostalCode)).OfType<string>().Distinct(StringComparer.Ordinal);

    public static IEnumerable<string> Cities(Customer c) =>
        c.Addresses.Select(a => City(a.City)).OfType<string>().Distinct(StringComparer.Ordinal);
}

/// <summary>
/// Jaro-Winkler similarity (Winkler's prefix bonus 0.1 for up to 4 common leading characters): 1 for equal
/// strings, 0 for nothing in common. Used on token-sorted name keys, so word order does not matter.
/// </summary>
internal static class NameSimilarity
{
    /// <summary>
    /// How alike two names are: the better of Jaro-Winkler on the token-sorted
    /// keys (word order and legal forms do not matter) and on the keys squashed to their letters in the original order
    /// (a typing slip that swaps a letter with the space between words, "Meier GmbH" / "MeieG rmbH", splits tokens and
    /// ruins the sorted comparison but is one transposition in the squashed one).
    /// </summary>
    public static double ForNames(string nameA, string nameB) =>
        Similarity(DuplicateKeys.NameKey(nameA), DuplicateKeys.NameKey(nameB), DuplicateKeys.Squash(nameA), DuplicateKeys.Squash(nameB));

    /// <summary><see cref="ForNames"/> with the name keys and squashed names (<see cref="DuplicateKeys.Squash"/> of the names) at hand.</summary>
    public static double Similarity(string a, string b, string squashedA, string squashedB)
    {
        var sorted = JaroWinkler(a, b);
        return sorted >= 1 ? 1 : Math.Max(sorted, JaroWinkler(squashedA, squashedB));
    }

    public static double JaroWinkler(string a, string b)
    {
        if (a.Length == 0 && b.Length == 0)
        {
            return 1;
        }

        if (a.Length == 0 || b.Length == 0)
        {
            return 0;
        }

        if (string.Equals(a, b, StringComparison.Ordinal))
        {
            return 1;
        }

        var window = Math.Max(0, Math.Max(a.Length, b.Length) / 2 - 1);
        Span<bool> aMatched = a.Length <= 256 ? stackalloc bool[a.Length] : new bool[a.Length];
        Span<bool> bMatched = b.Length <= 256 ? stackalloc bool[b.Length] : new bool[b.Length];
        var matches = 0;
        for (var i = 0; i < a.Length; i++)
        {
            var from = Math.Max(0, i - window);
            var to = Math.Min(b.Length - 1, i + window);
            for (var j = from; j <= to; j++)
            {
                if (!bMatched[j] && a[i] == b[j])
                {
                    aMatched[i] = bMatched[j] = true;
                    matches++;
                    break;
                }
            }
        }

        if (matches == 0)
        {
            return 0;
        }

        var transpositions = 0;
        var k = 0;
        for (var i = 0; i < a.Length; i++)
        {
            if (!aMatched[i])
            {
                continue;
            }

            while (!bMatched[k])
            {
                k++;
            }

            if (a[i] != b[k])
            {
                transpositions++;
            }

            k++;
        }

        double m = matches;
        var jaro = (m / a.Length + m / b.Length + (m - transpositions / 2.0) / m) / 3.0;
        var prefix = 0;
        while (prefix < Math.Min(4, Math.Min(a.Length, b.Length)) && a[prefix] == b[prefix])
        {
            prefix++;
        }

        return jaro + prefix * 0.1 * (1 - jaro);
    }
}
