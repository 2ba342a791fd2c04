using System.Globalization;
using System.Reflection;
using System.Text;
using Scriban;
using Scriban.Parsing;
using Scriban.Runtime;

namespace CrmEngine.Templates;

/// <summary>HTML a template produced on purpose (<c>raw</c>, a partial, a layout's <c>content</c>): written without escaping.</summary>
public sealed record RawHtml(string Html)
{
    public override string ToString() => Html;
}

/// <summary>
/// One render of one part (subject, HTML body or text body). In HTML mode every value a template writes is
/// HTML-escaped unless it is <see cref="RawHtml"/>; the template's own literal text is written as it is. Data is
/// read-only: templates cannot change the model they are given.
/// </summary>
internal sealed class MailTemplateContext : TemplateContext
{
    public MailTemplateContext(ScriptObject builtins, bool html, CultureInfo culture, MailTemplates owner, TemplatesOptions options, CancellationToken cancellationToken)
        : base(builtins)
    {
        Html = html;
        Culture = culture;
        Owner = owner;
        StrictVariables = false;
        // Missing optional data renders as empty: a member of null (contact.name without a contact) is null, not an error.
        EnableRelaxedMemberAccess = true;
        EnableRelaxedTargetAccess = true;
        EnableRelaxedIndexerAccess = true;
        EnableNullIndexer = true;
        LoopLimit = options.LoopLimit;
        LoopLimitQueryable = options.LoopLimit;
        RecursiveLimit = options.RecursiveLimit;
        OutputLimit = options.MaxOutputChars;
        OnOutputLimit = ScriptLimitBehavior.Throw;
        LimitToString = options.MaxStringChars;
        OnStringLimit = ScriptLimitBehavior.Throw;
        ObjectRecursionLimit = 20;
        RegexTimeOut = options.Timeout;
        CancellationToken = cancellationToken;
        MemberFilter = DataMembers.IsVisible;
        MemberRenamer = StandardMemberRenamer.Default;
        PushCulture(culture);
    }

    public bool Html { get; }

    public CultureInfo Culture { get; }

    public MailTemplates Owner { get; }

    /// <summary>Partials currently being rendered (guards partials that include each other).</summary>
    public int IncludeDepth { get; set; }

    public override TemplateContext Write(SourceSpan span, object? textAsObject)
    {
        if (textAsObject is null)
        {
            return this;
        }

        if (textAsObject is RawHtml raw)
        {
            Write(raw.Html);
            return this;
        }

        var text = ObjectToString(textAsObject);
        if (string.IsNullOrEmpty(text))
        {
            return this;
        }

        Write(Html ? HtmlText.Escape(text) : text);
        return this;
    }

    // Accessors depend only on the type (the filter and renamer are the same for every render): built once per type,
    // not once per render, because building one reflects over the type and runs the member filter on each member.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, IObjectAccessor?> MemberAccessors = new();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, IListAccessor?> ListAccessors = new();

    protected override IObjectAccessor? GetMemberAccessorImpl(object target) =>
        MemberAccessors.GetOrAdd(target.GetType(), _ => base.GetMemberAccessorImpl(target) is { } accessor ? new ReadOnlyAccessor(accessor) : null);

    protected override IListAccessor? GetListAccessorImpl(object target, Type type) =>
        ListAccessors.GetOrAdd(type, _ => base.GetListAccessorImpl(target, type) is { } accessor ? new ReadOnlyList(accessor) : null);

    private sealed class ReadOnlyAccessor(IObjectAccessor inner) : IObjectAccessor
    {
        public bool HasIndexer => inner.HasIndexer;

        public Type? IndexType => inner.IndexType;

        public int GetMemberCount(TemplateContext context, SourceSpan span, object target) => inner.GetMemberCount(context, span, target);

        public IEnumerable<string> GetMembers(TemplateContext context, SourceSpan span, object target) => inner.GetMembers(context, span, target);

        public bool HasMember(TemplateContext context, SourceSpan span, object target, string member) => inner.HasMember(context, span, target, member);

        public bool TryGetValue(TemplateContext context, SourceSpan span, object target, string member, out object? value) =>
            inner.TryGetValue(context, span, target, member, out value);

        public bool TryGetItem(TemplateContext context, SourceSpan span, object target, object index, out object? value) =>
            inner.TryGetItem(context, span, target, index, out value);

        // Template-local objects (ScriptObject built by the template itself) stay writable; model data does not.
        public bool TrySetValue(TemplateContext context, SourceSpan span, object target, string member, object? value) =>
            target is ScriptObject { IsReadOnly: false } && inner.TrySetValue(context, span, target, member, value);

        public bool TrySetItem(TemplateContext context, SourceSpan span, object target, object index, object? value) =>
            target is ScriptObject { IsReadOnly: false } && inner.TrySetItem(context, span, target, index, value);
    }

    private sealed class ReadOnlyList(IListAccessor inner) : IListAccessor
    {
        public int GetLength(TemplateContext context, SourceSpan span, object target) => inner.GetLength(context, span, target);

        public object? GetValue(TemplateContext context, SourceSpan span, object target, int index) => inner.GetValue(context, span, target, index);

        public void SetValue(TemplateContext context, SourceSpan span, object target, int index, object? value)
        {
            if (target is not ScriptArray { IsReadOnly: false })
            {
                throw new Scriban.Syntax.ScriptRuntimeException(span, "the model is read-only: a template cannot change it");
            }

            inner.SetValue(context, span, target, index, value);
        }
    }
}

/// <summary>What templates may read of .NET objects: data properties of data types, never methods or services.</summary>
internal static class DataMembers
{
    private static readonly Type[] Forbidden =
    [
        typeof(Type), typeof(MemberInfo), typeof(Assembly), typeof(Module), typeof(Delegate), typeof(IServiceProvider),
        typeof(Stream), typeof(Task), typeof(IDisposable), typeof(IAsyncDisposable), typeof(System.Runtime.InteropServices.SafeHandle),
        typeof(AppDomain), typeof(Thread), typeof(CancellationToken), typeof(Exception),
    ];

    public static bool IsVisible(MemberInfo member)
    {
        // Members of the framework's own types (Type, Assembly, strings, collections ...) are never exposed:
        // lists and dictionaries are read through Scriban's list/dictionary access, not their properties.
        var declaring = member.DeclaringType;
        if (declaring is not null && declaring.Namespace is null && declaring.IsDefined(typeof(System.Runtime.CompilerServices.CompilerGeneratedAttribute), false))
        {
            // Anonymous objects (new { number = "CS-1" }) handed in as extra values: plain data.
        }
        else if (declaring is null || declaring.Namespace is null || declaring.Namespace == "System" || declaring.Namespace.StartsWith("System.", StringComparison.Ordinal)
            || declaring.Namespace.StartsWith("Microsoft.", StringComparison.Ordinal) || declaring.Namespace.StartsWith("Scriban", StringComparison.Ordinal))
        {
            return false;
        }

        Type valueType;
        switch (member)
        {
            case PropertyInfo property when property.GetMethod is { IsPublic: true, IsStatic: false } && property.GetIndexParameters().Length == 0:
                valueType = property.PropertyType;
                break;
            case FieldInfo { IsPublic: true, IsStatic: false } field:
                valueType = field.FieldType;
                break;
            default:
                return false;
        }

        var checkedType = Nullable.GetUnderlyingType(valueType) ?? valueType;
        return !Forbidden.Any(f => f.IsAssignableFrom(checkedType)) && !typeof(Delegate).IsAssignableFrom(checkedType);
    }
}

/// <summary>The HTML escaping applied to values in HTML bodies: the five characters that matter, nothing else.</summary>
internal static class HtmlText
{
    public static string Escape(string text)
    {
        var first = text.AsSpan().IndexOfAny("&<>\"'");
        if (first < 0)
        {
            return text;
        }

        var builder = new StringBuilder(text.Length + 16);
        builder.Append(text, 0, first);
        for (var i = first; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '&': builder.Append("&amp;"); break;
                case '<': builder.Append("&lt;"); break;
                case '>': builder.Append("&gt;"); break;
                case '"': builder.Append("&quot;"); break;
                case '\'': builder.Append("&#39;"); break;
                default: builder.Append(text[i]); break;
            }
        }

        return builder.ToString();
    }
}
