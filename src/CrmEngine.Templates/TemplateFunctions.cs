using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Scriban;
using Scriban.Runtime;
using Scriban.Syntax;

namespace CrmEngine.Templates;

/// <summary>
/// The helpers templates call (imported with snake_case names): <c>raw</c>, <c>include</c>, <c>money</c>,
/// <c>date</c>, <c>number</c>, <c>multiline</c>, <c>word_wrap</c>, <c>pad</c>, <c>right_align</c>, <c>first_name</c>. Each takes the render's context
/// first so that it formats in the recipient's culture.
/// </summary>
internal static class TemplateFunctions
{
    private const int MaxWidth = 500;
    private static readonly ConcurrentDictionary<string, string> CurrencySymbols = new(StringComparer.Ordinal);

    /// <summary>Builds the shared, read-only set of functions: Scriban's built-ins minus anything that evaluates text as code or reads files, plus ours.</summary>
    public static ScriptObject CreateBuiltins()
    {
        var builtins = new TemplateContext().BuiltinObject;
        // include/include_join read through Scriban's own loader (and re-escape partials); object.eval* run text as a template.
        builtins.Remove("include");
        builtins.Remove("include_join");
        builtins.Remove("date");
        if (builtins["object"] is ScriptObject objectFunctions)
        {
            objectFunctions.Remove("eval");
            objectFunctions.Remove("eval_template");
        }

        builtins.Import(typeof(TemplateFunctions), ScriptMemberImportFlags.Method, filter: null, renamer: StandardMemberRenamer.Default);
        Freeze(builtins);
        return builtins;
    }

    private static void Freeze(ScriptObject scriptObject)
    {
        foreach (var value in scriptObject.Values)
        {
            if (value is ScriptObject nested && !nested.IsReadOnly)
            {
                Freeze(nested);
            }
        }

        scriptObject.IsReadOnly = true;
    }

    /// <summary><c>{{ raw value }}</c>: writes the value into an HTML body without escaping. Use only for trusted HTML.</summary>
    public static RawHtml Raw(object? value) => value as RawHtml ?? new RawHtml(value?.ToString() ?? "");

    /// <summary><c>{{ include "footer" }}</c>: renders <c>_partials/footer.html</c> (or <c>.txt</c> in text bodies) with the same variables.</summary>
    public static object Include(TemplateContext context, string name)
    {
        var mail = (MailTemplateContext)context;
        return mail.Owner.RenderPartial(mail, name);
    }

    /// <summary><c>{{ money order.total order.currency }}</c>: the amount in the recipient's culture with the currency's symbol.</summary>
    public static string Money(TemplateContext context, object? amount, string? currency = null)
    {
        if (amount is null || (amount is string s && s.Length == 0))
        {
            return "";
        }

        var culture = ((MailTemplateContext)context).Culture;
        var value = ToDecimal(context, amount);
        if (string.IsNullOrWhiteSpace(currency))
        {
            return value.ToString("N2", culture);
        }

        var format = (NumberFormatInfo)culture.NumberFormat.Clone();
        format.CurrencySymbol = SymbolOf(currency.Trim().ToUpperInvariant(), culture);
        return value.ToString("C", format);
    }

    /// <summary><c>{{ number value 2 }}</c>: a number in the recipient's culture with the given decimals.</summary>
    public static string Number(TemplateContext context, object? value, int decimals = 2)
    {
        if (value is null || (value is string s && s.Length == 0))
        {
            return "";
        }

        return ToDecimal(context, value).ToString("N" + Math.Clamp(decimals, 0, 10).ToString(CultureInfo.InvariantCulture), ((MailTemplateContext)context).Culture);
    }

    /// <summary>
    /// <c>{{ date order.ordered_at "long" }}</c>: a date in the recipient's culture. Formats: <c>short</c>, <c>long</c>
    /// (default), <c>datetime</c>, <c>time</c>, <c>iso</c>, or a .NET pattern such as <c>"dd MMM yyyy"</c>.
    /// </summary>
    public static string Date(TemplateContext context, object? value, string format = "long")
    {
        var culture = ((MailTemplateContext)context).Culture;
        var pattern = format switch
        {
            "short" => "d",
            "long" => "D",
            "datetime" => "f",
            "time" => "t",
            "iso" => "yyyy-MM-dd",
            _ => format,
        };
        try
        {
            return value switch
            {
                null => "",
                DateTimeOffset at => at.ToString(pattern, culture),
                DateTime at => at.ToString(pattern, culture),
                DateOnly day => day.ToString(pattern is "f" or "t" ? "D" : pattern, culture),
                string text when text.Length == 0 => "",
                string text when DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) => parsed.ToString(pattern, culture),
                _ => throw new ScriptRuntimeException(context.CurrentSpan, $"date: '{value}' is not a date"),
            };
        }
        catch (FormatException)
        {
            throw new ScriptRuntimeException(context.CurrentSpan, $"date: '{format}' is not a date format (use short, long, datetime, time, iso or a pattern like \"dd MMM yyyy\")");
        }
    }

    /// <summary><c>{{ multiline campaign.intro }}</c>: plain text with line breaks, in an HTML body escaped and with <c>&lt;br&gt;</c> at each break.</summary>
    public static object Multiline(TemplateContext context, object? text)
    {
        var value = text is null ? "" : context.ObjectToString(text) ?? "";
        if (!((MailTemplateContext)context).Html)
        {
            return value;
        }

        return new RawHtml(string.Join("<br>\n", value.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n').Select(HtmlText.Escape)));
    }

    /// <summary><c>{{ word_wrap text 72 }}</c>: breaks plain text into lines of at most <c>width</c> characters at spaces (<c>wrap</c> is a Scriban keyword).</summary>
    public static string WordWrap(TemplateContext context, object? text, int width = 72)
    {
        var value = text is null ? "" : context.ObjectToString(text) ?? "";
        width = Math.Clamp(width, 10, MaxWidth);
        var result = new StringBuilder(value.Length + 16);
        foreach (var paragraph in value.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'))
        {
            if (result.Length > 0)
            {
                result.Append('\n');
            }

            var lineLength = 0;
            foreach (var word in paragraph.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (lineLength > 0 && lineLength + 1 + word.Length > width)
                {
                    result.Append('\n');
                    lineLength = 0;
                }
                else if (lineLength > 0)
                {
                    result.Append(' ');
                    lineLength++;
                }

                result.Append(word);
                lineLength += word.Length;
            }
        }

        return result.ToString();
    }

    /// <summary><c>{{ pad line.description 30 }}</c>: pads (or cuts) text to a column width, for tables in text bodies.</summary>
    public static string Pad(TemplateContext context, object? text, int width) => Column(context, text, Math.Abs(width), alignRight: false);

    /// <summary><c>{{ right_align (money line.amount order.currency) 12 }}</c>: like <c>pad</c>, with the text at the right edge (amounts).</summary>
    public static string RightAlign(TemplateContext context, object? text, int width) => Column(context, text, Math.Abs(width), alignRight: true);

    private static string Column(TemplateContext context, object? text, int width, bool alignRight)
    {
        var value = text is null ? "" : context.ObjectToString(text) ?? "";
        var size = Math.Min(Math.Abs(width), MaxWidth);
        if (value.Length > size)
        {
            return size <= 1 ? value[..size] : value[..(size - 1)] + "…";
        }

        return alignRight ? value.PadLeft(size) : value.PadRight(size);
    }

    /// <summary><c>{{ first_name contact.name }}</c>: the first word of a person's name (the whole name when it has no space, as in Chinese names).</summary>
    public static string FirstName(object? name)
    {
        var value = name?.ToString()?.Trim() ?? "";
        var space = value.IndexOf(' ', StringComparison.Ordinal);
        return space > 0 ? value[..space] : value;
    }

    private static decimal ToDecimal(TemplateContext context, object value)
    {
        try
        {
            return value switch
            {
                decimal d => d,
                string text => decimal.Parse(text, NumberStyles.Number, CultureInfo.InvariantCulture),
                IConvertible convertible => convertible.ToDecimal(CultureInfo.InvariantCulture),
                _ => throw new FormatException(),
            };
        }
        catch (Exception ex) when (ex is FormatException or InvalidCastException or OverflowException)
        {
            throw new ScriptRuntimeException(context.CurrentSpan, $"'{value}' is not a number");
        }
    }

    /// <summary>The symbol for an ISO 4217 code: the culture's own when it uses that currency, else the symbol of the code's home region.</summary>
    internal static string SymbolOf(string isoCode, CultureInfo culture) =>
        // Cached per (currency, culture): a RegionInfo costs an ICU look-up, too much for every amount of every render.
        CultureSymbols.GetOrAdd((isoCode, culture.Name), static (key, c) => FindSymbol(key.Item1, c), culture);

    private static readonly ConcurrentDictionary<(string, string), string> CultureSymbols = new();

    private static string FindSymbol(string isoCode, CultureInfo culture)
    {
        try
        {
            if (!culture.IsNeutralCulture && culture.Name.Length > 0 && new RegionInfo(culture.Name).ISOCurrencySymbol == isoCode)
            {
                return culture.NumberFormat.CurrencySymbol;
            }
        }
        catch (ArgumentException)
        {
            // A culture without a region: fall through to the code's home region.
        }

        return CurrencySymbols.GetOrAdd(isoCode, static code =>
        {
            // The code's home region (USD -> US, GBP -> GB, JPY -> JP, CNY -> CN); a scan of every culture would cost
            // a second on the first render. The euro has no home region.
            if (code == "EUR")
            {
                return "€";
            }

            try
            {
                var home = new RegionInfo(code[..2]);
                return home.ISOCurrencySymbol == code ? home.CurrencySymbol : code;
            }
            catch (ArgumentException)
            {
                return code;
            }
        });
    }
}
