using System.Collections;
using System.Reflection;
using CrmEngine.Abstractions.Model;
using Scriban;
using Scriban.Runtime;
using Scriban.Syntax;

namespace CrmEngine.Templates;

/// <summary>
/// <c>crm templates check</c>: every file of the templates folder is parsed, and every variable and member path
/// is checked against the model's shape (customer, contact, order, sender ..., the helpers, the trigger's extra
/// names, and variables the templates assign). Then each template is rendered once with a full sample model and
/// once with an empty one, so that runtime mistakes (a helper given text instead of a number) show too.
/// Problems are reported as <c>file:line:column: message</c>.
/// </summary>
public static class TemplateChecker
{
    private static readonly Dictionary<string, Type> ModelShapes = new(StringComparer.Ordinal)
    {
        ["customer"] = typeof(Customer),
        ["contact"] = typeof(ContactPerson),
        ["order"] = typeof(Order),
        ["sender"] = typeof(MailSender),
        ["unsubscribe_url"] = typeof(string),
        ["culture"] = typeof(string),
    };

    /// <summary>Names Scriban itself provides inside loops and blocks.</summary>
    private static readonly HashSet<string> LanguageNames = new(StringComparer.Ordinal) { "for", "while", "tablerow", "this", "empty", "blank", "content", "layout" };

    public static IReadOnlyList<TemplateProblem> Check(MailTemplates templates, bool render = true)
    {
        ArgumentNullException.ThrowIfNull(templates);
        var problems = new List<TemplateProblem>();
        if (!Directory.Exists(templates.Directory))
        {
            problems.Add(new TemplateProblem(templates.Display(templates.Directory), 0, 0, "the templates folder does not exist"));
            return problems;
        }

        foreach (var name in templates.Names())
        {
            foreach (var file in new[] { TemplateFolder.SubjectFile(name), TemplateFolder.HtmlFile(name), TemplateFolder.TextFile(name) })
            {
                if (!File.Exists(Path.Combine(templates.Directory, file)))
                {
                    problems.Add(new TemplateProblem(templates.Display(Path.Combine(templates.Directory, file)), 0, 0,
                        $"missing: template '{name}' needs {name}.subject.txt, {name}.html and {name}.txt"));
                }
            }
        }

        var parsed = new List<(string Display, Template Template)>();
        foreach (var path in templates.AllFiles())
        {
            var display = templates.Display(path);
            var (template, problem) = MailTemplates.Parse(path, display, new FileInfo(path));
            if (problem is not null)
            {
                problems.Add(problem);
            }
            else
            {
                parsed.Add((display, template!));
            }
        }

        // Variables any template assigns (title, preheader, a partial's helpers ...) count as known everywhere.
        var assigned = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, template) in parsed)
        {
            CollectAssigned(template.Page, assigned);
        }

        var extraNames = new HashSet<string>(templates.Options.ExtraNames, StringComparer.Ordinal);
        foreach (var (display, template) in parsed)
        {
            new Walker(display, templates.Builtins, assigned, extraNames, problems).Walk(template.Page);
        }

        if (render && problems.Count == 0)
        {
            TrialRenders(templates, problems);
        }

        return problems
            .DistinctBy(p => p.ToString())
            .OrderBy(p => p.File, StringComparer.Ordinal).ThenBy(p => p.Line).ThenBy(p => p.Column)
            .ToList();
    }

    private static void TrialRenders(MailTemplates templates, List<TemplateProblem> problems)
    {
        foreach (var name in templates.Names().Where(templates.Exists))
        {
            foreach (var model in new[] { SampleModels.Full(), SampleModels.Empty() })
            {
                try
                {
                    templates.Render(name, model);
                }
                catch (TemplateRenderException ex)
                {
                    var message = ex.Line > 0 && ex.Message.StartsWith($"{ex.File}:{ex.Line}:{ex.Column}: ", StringComparison.Ordinal)
                        ? ex.Message[$"{ex.File}:{ex.Line}:{ex.Column}: ".Length..]
                        : ex.Message;
                    problems.Add(new TemplateProblem(ex.File ?? templates.Display(Path.Combine(templates.Directory, name)), ex.Line, ex.Column,
                        $"{message} (trial render with {(model.Customer is null ? "an empty model" : "a sample customer")})"));
                    break;
                }
            }
        }
    }

    private static void CollectAssigned(ScriptNode? node, HashSet<string> names)
    {
        if (node is null)
        {
            return;
        }

        switch (node)
        {
            case ScriptAssignExpression { Target: ScriptVariableGlobal target }:
                names.Add(target.Name);
                break;
            case ScriptCaptureStatement { Target: ScriptVariableGlobal capture }:
                names.Add(capture.Name);
                break;
            case ScriptFunction function:
                if (function.NameOrDoToken is ScriptVariable functionName)
                {
                    names.Add(functionName.Name);
                }

                foreach (var parameter in function.Parameters ?? [])
                {
                    if (parameter.Name is { } parameterName)
                    {
                        names.Add(parameterName.Name);
                    }
                }

                break;
        }

        foreach (var child in node.Children)
        {
            CollectAssigned(child, names);
        }
    }

    /// <summary>What an expression is known to be: a .NET model type, one of the built-in function groups, or anything.</summary>
    private sealed record Shape(Type? Type, ScriptObject? Functions, string Path)
    {
        public static Shape Any(string path) => new(null, null, path);
    }

    private sealed class Walker(string file, ScriptObject builtins, HashSet<string> assigned, HashSet<string> extraNames, List<TemplateProblem> problems)
    {
        private readonly Dictionary<string, Shape> _bound = new(StringComparer.Ordinal);
        private int _withDepth;

        public void Walk(ScriptNode? node)
        {
            switch (node)
            {
                case null:
                    return;
                case ScriptMemberExpression or ScriptVariableGlobal or ScriptIndexerExpression:
                    Resolve((ScriptExpression)node);
                    return;
                case ScriptAssignExpression assign:
                    var value = assign.Value is ScriptMemberExpression or ScriptVariableGlobal or ScriptIndexerExpression ? Resolve(assign.Value) : null;
                    if (value is null)
                    {
                        Walk(assign.Value);
                    }

                    switch (assign.Target)
                    {
                        case ScriptVariableGlobal target:
                            // `ticket = extra.case` or `line = order.lines[0]`: later uses of the name are checked against that shape.
                            _bound[target.Name] = value ?? Shape.Any(target.Name);
                            break;
                        case ScriptMemberExpression member:
                            Resolve(member.Target);
                            break;
                        case ScriptIndexerExpression indexer:
                            Resolve(indexer.Target);
                            Walk(indexer.Index);
                            break;
                    }

                    return;
                case ScriptForStatement loop:
                    var items = loop.Iterator is null ? null : Resolve(loop.Iterator);
                    foreach (var argument in loop.NamedArguments ?? [])
                    {
                        Walk(argument.Value);
                    }

                    var name = (loop.Variable as ScriptVariable)?.Name;
                    var previous = name is not null && _bound.TryGetValue(name, out var p) ? p : null;
                    if (name is not null)
                    {
                        _bound[name] = ElementOf(items, name);
                    }

                    Walk(loop.Body);
                    Walk(loop.Else);
                    if (name is not null)
                    {
                        if (previous is null)
                        {
                            _bound.Remove(name);
                        }
                        else
                        {
                            _bound[name] = previous;
                        }
                    }

                    return;
                case ScriptNamedArgument named:
                    Walk(named.Value);
                    return;
                case ScriptFunction function:
                    Walk(function.Body);
                    return;
                case ScriptWithStatement with:
                    Walk(with.Name);
                    // Inside `with`, plain names are members of the object: not checked.
                    _withDepth++;
                    Walk(with.Body);
                    _withDepth--;
                    return;
            }

            foreach (var child in node.Children)
            {
                Walk(child);
            }
        }

        private Shape Resolve(ScriptExpression? expression)
        {
            switch (expression)
            {
                case null:
                    return Shape.Any("");
                case ScriptVariableGlobal variable:
                    return Root(variable);
                case ScriptVariable other:
                    return Shape.Any(other.Name);
                case ScriptMemberExpression member:
                {
                    var target = Resolve(member.Target);
                    return member.Member is { } name ? Member(target, name.Name, name) : target;
                }

                case ScriptIndexerExpression indexer:
                {
                    var target = Resolve(indexer.Target);
                    Walk(indexer.Index);
                    return ElementOf(target, target.Path + "[]");
                }

                default:
                    Walk(expression);
                    return Shape.Any(expression.ToString() ?? "");
            }
        }

        private Shape Root(ScriptVariableGlobal variable)
        {
            var name = variable.Name;
            if (_bound.TryGetValue(name, out var bound))
            {
                return bound;
            }

            if (ModelShapes.TryGetValue(name, out var type))
            {
                return new Shape(type, null, name);
            }

            if (builtins.TryGetValue(name, out var builtin))
            {
                return builtin is ScriptObject functions ? new Shape(null, functions, name) : Shape.Any(name);
            }

            if (name == "extra" || extraNames.Contains(name) || assigned.Contains(name) || LanguageNames.Contains(name) || _withDepth > 0)
            {
                return Shape.Any(name);
            }

            Report(variable, $"unknown variable '{name}' (the model has {string.Join(", ", ModelShapes.Keys.Append("extra"))}; the trigger may add {string.Join(", ", extraNames.Order(StringComparer.Ordinal))})");
            return Shape.Any(name);
        }

        private Shape Member(Shape target, string member, ScriptNode at)
        {
            var path = target.Path + "." + member;
            if (target.Functions is { } functions)
            {
                if (!functions.ContainsKey(member))
                {
                    Report(at, $"'{target.Path}' has no function '{member}'");
                }

                return Shape.Any(path);
            }

            if (target.Type is not { } type)
            {
                return Shape.Any(path);
            }

            type = Nullable.GetUnderlyingType(type) ?? type;
            if (DictionaryValue(type) is { } valueType)
            {
                return new Shape(valueType, null, path);
            }

            if (ListElement(type) is not null)
            {
                if (member == "size")
                {
                    return new Shape(typeof(int), null, path);
                }

                Report(at, $"'{target.Path}' is a list: use 'for item in {target.Path}', '{target.Path}[0]' or '{target.Path}.size', not '.{member}'");
                return Shape.Any(path);
            }

            if (IsValue(type))
            {
                Report(at, $"'{target.Path}' is a single value ({Describe(type)}); it has no field '{member}'");
                return Shape.Any(path);
            }

            var fields = Fields(type);
            if (fields.TryGetValue(member, out var fieldType))
            {
                return new Shape(fieldType, null, path);
            }

            Report(at, $"'{target.Path}' has no field '{member}' (fields: {string.Join(", ", fields.Keys.Order(StringComparer.Ordinal))})");
            return Shape.Any(path);
        }

        private static Shape ElementOf(Shape? list, string path)
        {
            if (list?.Type is { } type)
            {
                type = Nullable.GetUnderlyingType(type) ?? type;
                if (ListElement(type) is { } element)
                {
                    return new Shape(element, null, path);
                }

                if (DictionaryValue(type) is { } value)
                {
                    return new Shape(value, null, path);
                }
            }

            return Shape.Any(path);
        }

        private void Report(ScriptNode at, string message) =>
            problems.Add(new TemplateProblem(file, at.Span.Start.Line + 1, at.Span.Start.Column + 1, message));
    }

    private static Dictionary<string, Type> Fields(Type type)
    {
        var fields = new Dictionary<string, Type>(StringComparer.Ordinal);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (DataMembers.IsVisible(property))
            {
                fields[StandardMemberRenamer.Default(property)] = property.PropertyType;
            }
        }

        return fields;
    }

    private static bool IsValue(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(DateTimeOffset) || type == typeof(DateTime)
        || type == typeof(DateOnly) || type == typeof(TimeOnly) || type == typeof(TimeSpan) || type == typeof(Guid);

    private static string Describe(Type type) =>
        type == typeof(string) ? "text" : type.IsEnum ? "one of " + string.Join(", ", Enum.GetNames(type)) :
        type == typeof(DateTimeOffset) || type == typeof(DateTime) || type == typeof(DateOnly) ? "a date; format it with date" :
        type == typeof(bool) ? "true or false" : "a number";

    private static Type? DictionaryValue(Type type)
    {
        var dictionary = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IDictionary<,>) ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>));
        return dictionary?.GetGenericArguments() is [var key, var value] && key == typeof(string) ? value : null;
    }

    private static Type? ListElement(Type type)
    {
        if (type == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(type) || DictionaryValue(type) is not null)
        {
            return null;
        }

        var enumerable = type.GetInterfaces().Append(type).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>));
        return enumerable?.GetGenericArguments()[0] ?? typeof(object);
    }
}

/// <summary>Models for trial renders and previews: one with every field filled, one with nothing but the sender.</summary>
public static class SampleModels
{
    public static TemplateModel Full() => new()
    {
        Customer = new Customer
        {
            Id = "sample",
            Name = "Sample Customer Ltd",
            Owner = "Sam Rep",
            Currency = "EUR",
            Emails = ["info@sample.example"],
            Addresses = [new Address { Line1 = "1 Sample Street", PostalCode = "12345", City = "Sampleton", Country = "DE" }],
            Contacts = [new ContactPerson { Id = "p1", Name = "Alex Sample", Email = "alex@sample.example", Primary = true }],
        },
        Contact = new ContactPerson { Id = "p1", Name = "Alex Sample", Email = "alex@sample.example", Primary = true },
        Order = new Order
        {
            Id = "o1",
            Number = "SO-1",
            Currency = "EUR",
            OrderedAt = new DateTimeOffset(2026, 1, 15, 10, 0, 0, TimeSpan.Zero),
            Lines = [new OrderLine { Description = "Sample item", Quantity = 2, UnitPrice = 9.5m, Sku = "S-1", Unit = "pcs" }],
        },
        Sender = new MailSender("Sample Sender", "sender@sample.example"),
        UnsubscribeUrl = "https://crm.example/unsubscribe/sample",
        Extra = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["case"] = new Dictionary<string, object?> { ["number"] = "CS-1", ["subject"] = "Sample request", ["respond_by"] = new DateTimeOffset(2026, 1, 16, 10, 0, 0, TimeSpan.Zero) },
            ["campaign"] = new Dictionary<string, object?>
            {
                ["name"] = "sample", ["subject"] = "Sample offers", ["headline"] = "Sample headline", ["intro"] = "Sample text.",
                ["offers"] = new List<object?> { new Dictionary<string, object?> { ["title"] = "Sample offer", ["price"] = 10m, ["currency"] = "EUR", ["text"] = "Text" } },
                ["link"] = "https://shop.example/sample", ["link_text"] = "Shop now",
            },
        },
    };

    public static TemplateModel Empty() => new() { Sender = new MailSender("Sample Sender", "sender@sample.example") };
}
